"""Test fixtures shared across brainscan, so no test suite builds its own copy.

``onnx_models``
    tiny real ONNX classifiers built with onnx.helper (no training, no TensorFlow).
``packages``
    model packages (model.onnx + manifest.json) of those classifiers, and packages broken in
    one way (a cut ONNX file).
``guard``
    a real out-of-distribution guard for them, fitted with brainscan_manifest's own code.
``dicoms``
    MR DICOM files with made-up patient data, to prove the services never let it out.
``pipeline``
    the training pipeline's parameters with a profile that runs in minutes.

``dicoms`` and ``pipeline`` need only numpy and pydicom; the others need the ``[onnx]`` extra.
"""
