"""The job logic, step by step: snapshot → export in the sandbox → check the output → pull request.

:class:`bot.pipeline.flow.JobPipeline` strings the steps together; each step is a module here.
"""
