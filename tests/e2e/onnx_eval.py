"""onnx_eval.py — checks an ONNX file that `PROG export` wrote, for tests/e2e/onnx.sh.

    onnx_eval.py MODEL.onnx INPUT.npy EXPECTED.npy

Checks the model with python3-onnx (checker with full_check, and strict
shape inference, whose output shape must be the declared one), runs the
graph on INPUT with a small numpy evaluator of its own, one ONNX operator at
a time as the ONNX specification defines it (in float64), and compares the
result with EXPECTED, what the trainer computed (`reconstruct`, `encode`,
`decode`). Prints one "ok - ..." or "not ok - ..." line per check and the
largest difference; exits 1 if any check failed.
"""
import math
import sys

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

TOL = 1e-5  # |onnx - trainer| <= TOL * (1 + |trainer|), elementwise

erf = np.vectorize(math.erf, otypes=[np.float64])


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def conv(x, w, b, strides, pads):
    """Cross-correlation, NCHW, pads [top, left, bottom, right]."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    x = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    oh = (x.shape[2] - kh) // strides[0] + 1
    ow = (x.shape[3] - kw) // strides[1] + 1
    cols = np.empty((n, c, kh, kw, oh, ow))
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = x[:, :, i:i + strides[0] * oh:strides[0], j:j + strides[1] * ow:strides[1]]
    y = np.einsum("nckhij,ockh->noij", cols.reshape(n, c, kh, kw, oh, ow), w)
    return y + b.reshape(1, -1, 1, 1)


def conv_transpose(x, w, b, strides, pads, output_padding):
    """The gradient of conv: every input pixel scatters the kernel."""
    n, c, h, wd = x.shape
    _, o, kh, kw = w.shape
    full_h = (h - 1) * strides[0] + kh + output_padding[0]
    full_w = (wd - 1) * strides[1] + kw + output_padding[1]
    y = np.zeros((n, o, full_h, full_w))
    for i in range(kh):
        for j in range(kw):
            y[:, :, i:i + strides[0] * h:strides[0], j:j + strides[1] * wd:strides[1]] += np.einsum(
                "nchw,co->nohw", x, w[:, :, i, j])
    y = y[:, :, pads[0]:full_h - pads[2], pads[1]:full_w - pads[3]]
    return y + b.reshape(1, -1, 1, 1)


def pool(x, k, s, reduce):
    n, c, h, w = x.shape
    oh, ow = (h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1
    win = np.stack([x[:, :, i:i + s[0] * oh:s[0], j:j + s[1] * ow:s[1]]
                    for i in range(k[0]) for j in range(k[1])])
    return reduce(win, axis=0)


def run(model, x):
    env = {t.name: numpy_helper.to_array(t).astype(np.float64)
           if numpy_helper.to_array(t).dtype.kind == "f" else numpy_helper.to_array(t)
           for t in model.graph.initializer}
    env[model.graph.input[0].name] = x.astype(np.float64)
    env[""] = None
    for node in model.graph.node:
        a = attrs(node)
        i = [env[name] for name in node.input]
        op = node.op_type
        if op == "Gemm":
            w = i[1].T if a.get("transB", 0) else i[1]
            y = i[0] @ w + i[2]
        elif op == "Conv":
            y = conv(i[0], i[1], i[2], a["strides"], a["pads"])
        elif op == "ConvTranspose":
            y = conv_transpose(i[0], i[1], i[2], a["strides"], a["pads"], a.get("output_padding", [0, 0]))
        elif op == "MaxPool":
            y = pool(i[0], a["kernel_shape"], a["strides"], np.max)
        elif op == "AveragePool":
            y = pool(i[0], a["kernel_shape"], a["strides"], np.mean)
        elif op == "Resize":
            assert a["mode"] == b"nearest" and a["coordinate_transformation_mode"] == b"asymmetric"
            sh, sw = int(i[2][2]), int(i[2][3])
            y = i[0].repeat(sh, axis=2).repeat(sw, axis=3)
        elif op == "BatchNormalization":
            x_, scale, bias, mean, var = i
            shape = (1, -1) + (1,) * (x_.ndim - 2)
            y = (x_ - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + a["epsilon"]) \
                * scale.reshape(shape) + bias.reshape(shape)
        elif op == "Flatten":
            y = i[0].reshape(i[0].shape[0], -1)
        elif op == "Reshape":
            # 0 copies the input's dimension (allowzero is 0)
            y = i[0].reshape([i[0].shape[k] if d == 0 else int(d) for k, d in enumerate(i[1])])
        elif op == "Relu":
            y = np.maximum(i[0], 0)
        elif op == "LeakyRelu":
            y = np.where(i[0] > 0, i[0], a["alpha"] * i[0])
        elif op == "Sigmoid":
            y = 1 / (1 + np.exp(-i[0]))
        elif op == "Tanh":
            y = np.tanh(i[0])
        elif op == "Elu":
            y = np.where(i[0] > 0, i[0], a["alpha"] * np.expm1(i[0]))
        elif op == "Softplus":
            y = np.logaddexp(0, i[0])
        elif op == "Erf":
            y = erf(i[0])
        elif op in ("Add", "Mul", "Div"):
            y = {"Add": np.add, "Mul": np.multiply, "Div": np.divide}[op](i[0], i[1])
        elif op == "Identity":
            y = i[0]
        else:
            raise SystemExit("not ok - unknown operator %s" % op)
        env[node.output[0]] = y
    return env[model.graph.output[0].name]


def main():
    path, inp, expected = sys.argv[1:4]
    failed = False

    def check(cond, what):
        nonlocal failed
        print(("ok - " if cond else "not ok - ") + what)
        failed |= not cond

    model = onnx.load(path)
    try:
        onnx.checker.check_model(model, full_check=True)
        check(True, "%s passes onnx.checker (full_check)" % path)
    except Exception as e:  # the checker's message says what is wrong
        check(False, "%s passes onnx.checker: %s" % (path, e))
    inferred = shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    shapes = {v.name: [d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim]
              for v in inferred.graph.value_info}
    declared = [d.dim_value or d.dim_param for d in model.graph.output[0].type.tensor_type.shape.dim]
    last = model.graph.node[-1].input[0]  # what the final Identity names as the output
    check(len(shapes) >= len(model.graph.node) - 1,
          "shape inference types every intermediate value (%d values, %d nodes)"
          % (len(shapes), len(model.graph.node)))
    # The batch stays symbolic; after Resize (scales) inference calls it unk__0, not N.
    got_shape = shapes.get(last)
    check(last == model.graph.input[0].name or
          (got_shape and isinstance(got_shape[0], str) and got_shape[1:] == declared[1:]),
          "the inferred output shape %s is the declared %s" % (got_shape, declared))
    ops = sorted({n.op_type for n in model.graph.node})
    check(model.opset_import[0].version >= 13, "opset %d >= 13; operators %s"
          % (model.opset_import[0].version, " ".join(ops)))
    x = np.load(inp)
    want = np.load(expected).astype(np.float64)
    in_dims = tuple(d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:])
    got = run(model, x.reshape((x.shape[0],) + in_dims)).reshape(want.shape)
    err = np.abs(got - want) / (1 + np.abs(want))
    check(err.max() <= TOL, "the graph, evaluated op by op, equals the trainer's %s to %g "
          "(largest difference %.3g)" % (expected.rsplit("/", 1)[-1], TOL, err.max()))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
