"""Any Hugging Face encoder -> per-layer vectors of labelled examples (cached in ``tuneprobe.store``).

Public API (torch/transformers are imported only when a model is actually run or loaded):

- ``tuneprobe.extract(task, model="default", split="train", layers=None, pooling="mean",
  sentence_pooling="cls", device="auto", batch_size=64, data_dir=None, cache_dir=None, *, cache=True,
  verify=None, max_length=None, progress=True, trust_remote_code=False, **task_options) -> Representations``
  (``tuneprobe.encoders.extract``);
- ``load_encoder(name, device="auto", trust_remote_code=False) -> Encoder`` and
  ``Encoder.from_model(model, tokenizer, name="in-memory", device="auto")`` (``tuneprobe.encoders.load``);
- subword alignment and windows (``align``), sparse pooling (``pool``), the ``tuneprobe extract`` command
  (``commands``).
"""
