"""ossdrop: direct uploads to Aliyun OSS (or its embedded twin), signed callbacks, dedup, thumbnails."""

__version__ = "0.1.0"
__all__ = ["__version__"]
