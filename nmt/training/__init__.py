"""The training layer: every nmt command that trains a model goes through it.

``translation``  ``nmt train`` / ``nmt finetune``: a many-to-many translation model from prepared data
``denoising``    ``nmt pretrain``: an mBART-style model by multilingual denoising
``rundir``       the run directory: lock, resume checks against the saved config, reset, logs, bundle.json
``settings``     what the fairseq loop is handed: typed ``LoopSettings`` and the ``Hooks`` interface
``hooks``        ``TrainHooks``: logging, per-direction validation, TensorBoard, ``training.json``

The loop itself (fairseq's ``Trainer``, atomic checkpoints, early stopping,
signals) is the fairseq adapter's (``nmt.fairseq_backend.loop``); nothing here
imports fairseq.
"""
