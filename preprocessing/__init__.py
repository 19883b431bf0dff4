"""Turn a folder of photos into the SageMaker image-classification training channels.

``python -m preprocessing prepare SOURCE OUT`` writes the images, ``.lst`` index files,
``labels.json``, ``manifest.json`` and ``rejected.csv``; ``python -m preprocessing upload OUT``
puts them in the training-data bucket. See docs/preprocessing.md.
"""
