"""Faces: detection (BlazeFace by default, MTCNN), 468-point mesh, named regions, alignment, drawing.

Models ship in ``ferkit/face/assets`` (ONNX, run with onnxruntime; licences in ``assets/NOTICE.md``).

>>> from ferkit.face import create_detector, FaceMesh, align_faces     # doctest: +SKIP
>>> faces = create_detector().detect(bgr)                               # doctest: +SKIP
>>> marks = FaceMesh().run(bgr, faces)                                  # doctest: +SKIP
>>> crops, matrices = align_faces(bgr, faces, (48, 48), landmarks=marks)  # doctest: +SKIP
"""

from .align import FER_BOX_TEMPLATE, FER_TEMPLATE, align_faces, anchor_points, similarity_matrices
from .detect import (
    BLAZEFACE_KEYPOINTS,
    DEFAULT_DETECTOR,
    MTCNN_KEYPOINTS,
    BlazeFaceDetector,
    BlazeFaceShortDetector,
    Detection,
    Detections,
    FaceDetector,
    MTCNNDetector,
    as_bgr,
    create_detector,
    list_detectors,
    register_detector,
    weighted_nms,
)
from .draw import draw_detections
from .landmarks import (
    CONNECTIONS,
    KEYPOINT_INDEX,
    NUM_LANDMARKS,
    REGIONS,
    FaceMesh,
    Landmarks,
    detect_landmarks,
    region_boxes,
    roi_matrices,
    rois_from_detections,
    rois_from_landmarks,
)

__all__ = [
    "BLAZEFACE_KEYPOINTS",
    "CONNECTIONS",
    "DEFAULT_DETECTOR",
    "FER_BOX_TEMPLATE",
    "FER_TEMPLATE",
    "KEYPOINT_INDEX",
    "MTCNN_KEYPOINTS",
    "NUM_LANDMARKS",
    "REGIONS",
    "BlazeFaceDetector",
    "BlazeFaceShortDetector",
    "Detection",
    "Detections",
    "FaceDetector",
    "FaceMesh",
    "Landmarks",
    "MTCNNDetector",
    "align_faces",
    "anchor_points",
    "as_bgr",
    "create_detector",
    "detect_landmarks",
    "draw_detections",
    "list_detectors",
    "region_boxes",
    "register_detector",
    "roi_matrices",
    "rois_from_detections",
    "rois_from_landmarks",
    "similarity_matrices",
    "weighted_nms",
]
