"""A seccomp filter for the bwrap sandbox, compiled by libseccomp (``libseccomp.so.2``, through ctypes).

The filter allows everything but the system calls an export never needs and an escape would:
mounting, namespaces, tracing other processes, kernel modules and keys, BPF, io_uring, clocks.
They fail with ``EPERM``; calls of another architecture (i386, x32) kill the process (libseccomp's
default for a foreign architecture). bubblewrap loads the compiled BPF from a file descriptor
(``--seccomp FD``). Where libseccomp is missing, :func:`compiled_filter` returns ``None`` and the
sandbox runs without the filter (the other limits still hold).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import logging
import os
import tempfile

log = logging.getLogger(__name__)

#: Denied with EPERM. Names unknown to this architecture are skipped.
DENIED_SYSCALLS = (
    # mounts and namespaces
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "fsopen", "fsconfig", "fsmount",
    "fspick", "move_mount", "open_tree", "mount_setattr",
    # other processes, the kernel and its keys
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
    "open_by_handle_at", "name_to_handle_at", "lookup_dcookie", "quotactl", "syslog",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    # the machine
    "reboot", "swapon", "swapoff", "acct", "settimeofday", "clock_settime", "clock_adjtime",
    "adjtimex", "iopl", "ioperm", "uselib", "vhangup", "sethostname", "setdomainname",
)  # fmt: skip

_ACT_ALLOW = 0x7FFF0000
_ACT_ERRNO = 0x00050000


@functools.cache
def _libseccomp() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("seccomp")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    return lib


@functools.cache
def compiled_filter() -> bytes | None:
    """The BPF program (bytes) bubblewrap loads, or ``None`` without libseccomp."""
    lib = _libseccomp()
    if lib is None:
        log.warning("libseccomp not found: the bwrap sandbox runs without a seccomp filter")
        return None
    ctx = lib.seccomp_init(_ACT_ALLOW)
    if not ctx:
        return None
    try:
        for name in DENIED_SYSCALLS:
            number = lib.seccomp_syscall_resolve_name(name.encode())
            if number < 0:
                continue
            if lib.seccomp_rule_add(ctx, _ACT_ERRNO | errno.EPERM, number, 0) != 0:
                raise OSError(f"libseccomp refused a rule for {name}")
        with tempfile.TemporaryFile() as out:
            if lib.seccomp_export_bpf(ctx, out.fileno()) != 0:
                raise OSError("libseccomp could not export the filter")
            out.seek(0)
            return out.read()
    finally:
        lib.seccomp_release(ctx)


def filter_fd(program: bytes) -> int:
    """A readable file descriptor positioned at the start of ``program`` (bwrap reads it to the end)."""
    fd = os.memfd_create("export-bot-seccomp", os.MFD_CLOEXEC)
    os.write(fd, program)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
