"""Input / output: images, video frames, batches of media paths, and result sinks.

Images come back as BGR ``uint8`` arrays (H, W, 3), upright (EXIF), alpha composited, 16-bit
scaled, huge files downscaled while decoding. Videos are streamed as :class:`Frame` objects with
exact timestamps. Results are written atomically to CSV, JSON Lines, JSON or Parquet.
"""

from ferkit.io.images import (
    DEFAULT_BACKGROUND,
    DEFAULT_MAX_DECODE_PIXELS,
    DEFAULT_MAX_PIXELS,
    ImageInfo,
    decode_image,
    load_image,
    to_bgr,
    write_image,
)
from ferkit.io.media import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    MediaKind,
    is_animated_image,
    is_image_path,
    is_video_path,
    media_kind,
)
from ferkit.io.sinks import FORMAT_BY_EXTENSION, RowSink, SinkFormat, open_sink, sink_format, write_rows
from ferkit.io.sources import Source, describe_problems, expand_sources
from ferkit.io.video import Frame, FrameStream, VideoInfo, iter_frames, probe_video

__all__ = [
    "DEFAULT_BACKGROUND",
    "DEFAULT_MAX_DECODE_PIXELS",
    "DEFAULT_MAX_PIXELS",
    "FORMAT_BY_EXTENSION",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "Frame",
    "FrameStream",
    "ImageInfo",
    "MediaKind",
    "RowSink",
    "SinkFormat",
    "Source",
    "VideoInfo",
    "decode_image",
    "describe_problems",
    "expand_sources",
    "is_animated_image",
    "is_image_path",
    "is_video_path",
    "iter_frames",
    "load_image",
    "media_kind",
    "open_sink",
    "probe_video",
    "sink_format",
    "to_bgr",
    "write_rows",
    "write_image",
]
