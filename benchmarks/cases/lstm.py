"""Dynamic quantized LSTM: qtorch vs torch's native dynamic LSTM and float nn.LSTM.

input 256, hidden 512, sequence 32; batch 1 and 16; 1 and 2 layers. Reference
numbers for native on a similar machine (1 thread, batch 1, 1 layer): dynamic
LSTM 1.7 ms, float nn.LSTM 8.0 ms. The "float32" contender is nn.LSTM itself.
"""
from typing import List

import torch

import qtorch.nn.quantized.dynamic as nnqd
from benchmarks.harness import Case, Contender, native_contenders, quiet_native

INPUT, HIDDEN, STEPS = 256, 512, 32


def cases(quick: bool) -> List[Case]:
    out = []
    for layers in (1, 2):
        for batch in (1, 16):
            torch.manual_seed(0)
            float_lstm = torch.nn.LSTM(INPUT, HIDDEN, num_layers=layers).eval()
            float_lstm.qconfig = torch.ao.quantization.default_dynamic_qconfig
            ours = nnqd.LSTM.from_float(float_lstm)
            x = torch.randn(STEPS, batch, INPUT)

            def make_native(float_lstm=float_lstm, x=x):
                with quiet_native():
                    theirs = torch.ao.nn.quantized.dynamic.LSTM.from_float(float_lstm)
                return lambda: theirs(x)

            macs = STEPS * batch * layers * 4 * HIDDEN * (2 * HIDDEN) - STEPS * batch * 4 * HIDDEN * (HIDDEN - INPUT)
            out.append(Case("lstm", f"LSTM {INPUT}->{HIDDEN} seq {STEPS} batch {batch} layers {layers}", [
                Contender("qtorch", lambda ours=ours, x=x: ours(x)),
                *native_contenders(make_native),
                Contender("float32", lambda float_lstm=float_lstm, x=x: float_lstm(x)),
            ], ops=2 * macs, quick=layers == 1 and batch == 1))
    return out
