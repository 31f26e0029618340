"""See the package docstring of qtorch.nn."""
from qtorch.nn.quantized.dynamic.linear import Linear  # noqa: E402
from qtorch.nn.quantized.dynamic.transformer import TransformerEncoder, TransformerEncoderLayer  # noqa: E402
from qtorch.nn.quantized.dynamic.rnn import GRU, LSTM, GRUCell, LSTMCell, RNNCell  # noqa: E402
