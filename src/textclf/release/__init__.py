"""The release: content-addressed image tags, the overlays that pin them, and the registry.

``git`` (a checkout's files, from the working tree or a commit), ``lock`` (dvc.lock and
``dvc status``), ``tag`` (what each image ships and its tag), ``overlays`` (the pins in
``deploy/overlays``), ``registry`` (digests and pushes, through skopeo), ``flow`` (the steps and
checks in the order a release goes through them), ``verify`` (DVC bytes re-hashed against
dvc.lock) and ``cli`` (``textclf release``).
"""
