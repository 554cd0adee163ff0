"""The training layer: every nmt command that trains a model goes through it.

``translation``  ``nmt train``: a many-to-many translation model from prepared data
``finetune``     ``nmt finetune``: the same from a pretrained mBART, with the ML50 recipe's settings
``denoising``    ``nmt pretrain``: an mBART-style model by multilingual denoising
``rundir``       the run directory: lock, resume checks against the saved config, reset, logs, bundle.json
``hooks``        ``TrainHooks``: logging, per-direction validation, TensorBoard, ``training.json``
``cli``          the commands that make and change models (train, finetune, pretrain, average, download, ...)

The loop itself (fairseq's ``Trainer``, atomic checkpoints, early stopping,
signals) is the fairseq adapter's (``nmt.fairseq_backend.loop``), and so is its
typed interface (``nmt.fairseq_backend.settings``); nothing here imports fairseq.
"""
