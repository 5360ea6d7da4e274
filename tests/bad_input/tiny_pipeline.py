"""The tiny pipeline the path, signal and leftover cases run (a zoo model trained 2 steps, nothing else)."""

PIPELINE = """[model]
{model}
[export]
seq_len = 6
stateful = false
[quantize]
precisions = []
[data]
synthetic = 8
seq = 6
[bench]
enabled = false
[output]
dir = "{out}"
"""
ZOO = 'zoo = "lstm_regressor"\ntrain_steps = 2'


def tiny_pipeline(model: str = ZOO, out: str = "out") -> str:
    return PIPELINE.format(model=model, out=out)
