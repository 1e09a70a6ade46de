"""MediaPipe's face mesh on one image, in a process of its own (the only module that imports mediapipe).

    python -P facemesh_worker.py IMAGE.npy RESULT.json

It needs numpy and mediapipe only, not t2bs (so it starts without importing torch).

IMAGE.npy holds an [H, W, 3] uint8 RGB image. RESULT.json receives `{"faces": [F][478][2]}`: the
landmarks of each face found (at most one), in pixels (x right, y down, 0 at the image's top left
corner). No face is an empty list, not an error. Exit status 0 when RESULT.json was written; 3 when
mediapipe cannot be imported or run (the reason on stderr's last line).

`t2bs.procedural.face_landmarks.run_face_mesh` starts it. A separate process, because MediaPipe's
native code logs straight to the process's stderr and stdout (which carry `t2bs serve`'s protocol and
the CLI's progress bar), keeps TFLite threads and its own protobuf runtime alive after use, and would
take the whole run down if it crashed.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np

EXIT_MEDIAPIPE_FAILED = 3
# The legacy solution ships its models inside the wheel (mediapipe/modules/face_landmark/*.tflite), so
# nothing is downloaded; the Tasks API's FaceLandmarker would need a separate model file.
FACE_MESH_MODULE = "mediapipe.python.solutions.face_mesh"


def face_mesh_pixels(image: np.ndarray) -> list[list[list[float]]]:
    """The face mesh of `image` ([H, W, 3] uint8 RGB): per face found (at most one), [478][2] pixel
    coordinates. Raises ImportError (or whatever a broken install raises) if mediapipe cannot load."""
    face_mesh = importlib.import_module(FACE_MESH_MODULE)
    height, width = image.shape[:2]
    # static_image_mode: detect on this image alone; refine_landmarks: the attention model, whose eye
    # and lip contours are tighter, plus 10 iris points.
    with face_mesh.FaceMesh(
        static_image_mode=True, max_num_faces=1, refine_landmarks=True, min_detection_confidence=0.5
    ) as detector:
        result = detector.process(np.ascontiguousarray(image, dtype=np.uint8))
    return [
        [[float(point.x) * width, float(point.y) * height] for point in face.landmark]
        for face in (result.multi_face_landmarks or [])
    ]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -P facemesh_worker.py IMAGE.npy RESULT.json", file=sys.stderr)
        return 2
    image = np.load(argv[0], allow_pickle=False)
    try:
        faces = face_mesh_pixels(image)
    except Exception as exc:  # ImportError, or a broken install (e.g. a protobuf it cannot use)
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_MEDIAPIPE_FAILED
    Path(argv[1]).write_text(json.dumps({"faces": faces}), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
