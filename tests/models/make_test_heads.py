#!/usr/bin/python3
"""Writes the small ONNX graphs the model-runtime tests load, into the folder given.

Run with Debian's python3 (python3-onnx). Exit status 3 means onnx is not importable, so the
tests skip; any other failure is a test failure.

Every graph's output is a known function of its input, so a test can check the layout, the
normalisation, the colour order, frame order and reversal exactly:

  head_ncthw.onnx      [N,3,4,6,10] -> [N,4]: mean of channel 0 of the first frame, of channel 0
                       of the last frame, of channel 1 and of channel 2 of the first frame
  head_ntchw.onnx      [N,4,3,6,10] -> [N,4]: the same function for the NTCHW layout
  head_ncthw_b1.onnx   head_ncthw with its batch fixed at 1
  head_ncthw_b2.onnx   head_ncthw with its batch fixed at 2
  head_nchw.onnx       [N,3,6,10] -> [N,2]: mean of channel 0 and of channel 2 of each frame
  yolov5_const.onnx    [N,3,64,64] -> [N,3,7]: YOLOv5 layout, 2 classes, fixed boxes (below)
  yolov8_const.onnx    [N,3,64,64] -> [N,6,3]: YOLOv8 layout, 2 classes, the same boxes

The detector graphs ignore the picture (its mean times zero) and always give the rows in
YOLO_ROWS: cx, cy, w, h in input pixels, objectness (YOLOv5 only), class scores.
"""

import sys

try:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError:
    sys.exit(3)

T, H, W = 4, 6, 10

# cx, cy, w, h, objectness, score of class 0, score of class 1
YOLO_ROWS = [
    [32.0, 32.0, 16.0, 8.0, 0.9, 0.1, 0.8],   # class 1, score 0.72
    [10.0, 20.0, 4.0, 4.0, 0.5, 0.9, 0.1],    # class 0, score 0.45
    [33.0, 32.0, 16.0, 8.0, 0.8, 0.2, 0.7],   # class 1, score 0.56: overlaps row 0, NMS drops it
]


def const(name, array, dtype=np.int64):
    return numpy_helper.from_array(np.array(array, dtype=dtype), name)


def save(graph, path):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    onnx.save(model, path)


def clip_head(path, layout, batch):
    """Means of single planes of the first and last frames, in NCTHW or NTCHW."""
    if layout == "NCTHW":
        shape = [batch, 3, T, H, W]
        c_axis, t_axis = 1, 2
    else:
        shape = [batch, T, 3, H, W]
        c_axis, t_axis = 2, 1
    nodes, inits, outs = [], [], []
    planes = [("c0_first", 0, 0), ("c0_last", 0, T - 1), ("c1_first", 1, 0), ("c2_first", 2, 0)]
    for name, c, t in planes:
        starts, ends = [0, 0], [0, 0]
        starts[0 if c_axis < t_axis else 1] = c
        ends[0 if c_axis < t_axis else 1] = c + 1
        starts[1 if c_axis < t_axis else 0] = t
        ends[1 if c_axis < t_axis else 0] = t + 1
        axes = sorted([c_axis, t_axis])
        inits += [const(name + "_s", starts), const(name + "_e", ends), const(name + "_a", axes)]
        nodes.append(helper.make_node("Slice", ["clip", name + "_s", name + "_e", name + "_a"],
                                      [name + "_plane"]))
        nodes.append(helper.make_node("ReduceMean", [name + "_plane"], [name], axes=[2, 3, 4],
                                      keepdims=0))
        outs.append(name)
    nodes.append(helper.make_node("Concat", outs, ["scores"], axis=1))
    dims = ["N" if batch is None else batch] + shape[1:]
    graph = helper.make_graph(
        nodes, "clip_head",
        [helper.make_tensor_value_info("clip", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [dims[0], 4])], inits)
    save(graph, path)


def frame_head(path):
    """[N,3,H,W] -> [N,2]: mean of channel 0 and of channel 2."""
    nodes = [
        # Slice first, then reduce (as in clip_head): OpenCV 4.6 mis-shapes a Slice after a
        # ReduceMean once the batch is above 1.
        helper.make_node("Slice", ["frame", "s0", "e0", "axis"], ["p0"]),
        helper.make_node("Slice", ["frame", "s2", "e2", "axis"], ["p2"]),
        helper.make_node("ReduceMean", ["p0"], ["c0"], axes=[2, 3], keepdims=0),  # [N,1]
        helper.make_node("ReduceMean", ["p2"], ["c2"], axes=[2, 3], keepdims=0),
        helper.make_node("Concat", ["c0", "c2"], ["scores"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "frame_head",
        [helper.make_tensor_value_info("frame", TensorProto.FLOAT, ["N", 3, H, W])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 2])],
        [const("s0", [0]), const("e0", [1]), const("s2", [2]), const("e2", [3]),
         const("axis", [1])])
    save(graph, path)


def constant_detector(path, layout):
    """[N,3,64,64] -> the rows of YOLO_ROWS in the YOLOv5 or YOLOv8 layout, for every image."""
    rows = np.array(YOLO_ROWS, dtype=np.float32)
    if layout == "yolov8":
        rows = np.delete(rows, 4, axis=1)  # no objectness
        rows = rows.T  # [4+C, N]
    flat = rows.reshape(-1)
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["means"], axes=[2, 3], keepdims=0),  # [N,3]
        helper.make_node("Gemm", ["means", "zeros", "table"], ["flat"], transB=1),  # [N, rows*cols]
        helper.make_node("Reshape", ["flat", "shape"], ["output"]),
    ]
    inits = [
        numpy_helper.from_array(np.zeros((flat.size, 3), dtype=np.float32), "zeros"),
        numpy_helper.from_array(flat, "table"),
        const("shape", [-1] + list(rows.shape)),
    ]
    graph = helper.make_graph(
        nodes, layout + "_const",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 64, 64])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N"] + list(rows.shape))],
        inits)
    save(graph, path)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_test_heads.py OUT_DIR")
    out = sys.argv[1]
    clip_head(out + "/head_ncthw.onnx", "NCTHW", None)
    clip_head(out + "/head_ntchw.onnx", "NTCHW", None)
    clip_head(out + "/head_ncthw_b1.onnx", "NCTHW", 1)
    clip_head(out + "/head_ncthw_b2.onnx", "NCTHW", 2)
    frame_head(out + "/head_nchw.onnx")
    constant_detector(out + "/yolov5_const.onnx", "yolov5")
    constant_detector(out + "/yolov8_const.onnx", "yolov8")


if __name__ == "__main__":
    main()
