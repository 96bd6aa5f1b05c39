"""Stage 4, training: the classifier's training job on the HPC, for both backends.

``python -m eo_tasks.training`` (:mod:`.__main__`) runs :mod:`.loop`, a restartable loop with
checkpoints (:mod:`.checkpoints`), the published learning-rate schedule (:mod:`.schedule`) and a
model card (:mod:`.model_card`). The loop and the two backends (:mod:`.keras_trainer`: TensorFlow +
Horovod; :mod:`.torch_trainer`: PyTorch + DDP) share :mod:`.contract`. :mod:`.data` reads training
sets with numpy and h5py alone; :mod:`.submit` is the orchestrator's side: the job's values.
"""
