"""Specs of the vision backbones, segmenters and detectors: pixels in, the field's output names out.

They need nothing but their modality: ``pixel_values`` comes from the forward signature and the
tasks (``image-classification``, ``semantic-segmentation``, ``object-detection``) from transformers'
auto mappings. Convolutional backbones whose config names no ``image_size`` get 224 × 224 pixels.
"""

from __future__ import annotations

from exporter.specs.base import VISION_INPUTS, InputSpec, ModelSpec

#: Image classifiers of the old ``transformers.onnx`` list and today's Hub (DINOv2).
BACKBONES = (
    "convnext",
    "dinov2",
    "levit",
    "mobilenet_v1",
    "mobilenet_v2",
    "mobilevit",
    "poolformer",
    "resnet",
    "segformer",
    "swin",
)
#: Object detectors: ``logits`` and ``pred_boxes``.
DETECTORS = ("yolos",)

SPECS: list[ModelSpec] = [
    *(ModelSpec(model_type=name, modality="vision") for name in (*BACKBONES, *DETECTORS)),
    # DETR also takes which pixels are padding (images of a batch differ in size).
    ModelSpec(
        model_type="detr",
        modality="vision",
        inputs=(*VISION_INPUTS, InputSpec(name="pixel_mask", kind="pixel_mask")),
    ),
]
