"""WebDataset video streaming: the shard format, writing shards, and streaming clips for training.

  format.py      the shard format (FORMAT, make_meta): the one place it is documented and versioned
  video.py       encode_mp4 / decode_clip: H.264 MP4 bytes <-> sampled, resized, cropped clips
  writer.py      ShardWriter: samples -> tar shards + manifest
  webvid.py      a video folder + WebVid-style CSV -> shards (the ``write`` command)
  shards.py      shard specs (paths, braces, globs, pipe:, fsspec) and a truncation-aware tar reader
  skips.py       skip reasons, counts and their log
  stream.py      ClipStream: the per-worker pipeline, resampled or one pass
  once.py        iterate_once, clip_stats: one deterministic pass (no lightning import)
  datamodule.py  VideoDataModule (re-exports iterate_once, clip_stats)
  synthetic.py   moving-gradient test videos for the tests and the benchmark
  bench.py       decoded clips/s against a plain PyAV loop (``make bench``)

Importing this package stays light (no torch or lightning) so that writers can use it cheaply; import
the submodules you need.
"""
