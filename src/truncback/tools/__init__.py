"""Tools beside the pipeline: the GPU check (``gpu_check``), config/schema.yaml generated from the
settings dataclasses (``config_schema``) and the documentation's blocks generated from the committed
outputs (``docs``)."""
