"""qtorch demo: a small CNN trained on scikit-learn's digits, quantized post-training
and with quantization-aware training, an LSTM quantized dynamically; each scripted,
saved and reloaded; accuracy, size and latency against float and against native
torch's quantized model, in one table."""
import copy
import io
import os
import statistics
import tempfile
import time
import warnings

import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from tqdm import tqdm

import qtorch
import qtorch.quantization as qq

torch.manual_seed(0)
SECONDS_OF_TRAINING = 4.0


# --- data ------------------------------------------------------------------------------
def digits():
    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0  # N x 1 x 8 x 8
    y = torch.tensor(data.target)
    perm = torch.randperm(len(y))
    x, y = x[perm], y[perm]
    split = int(0.8 * len(y))
    return (x[:split], y[:split]), (x[split:], y[split:])


# --- models, written the classic eager way ---------------------------------------------
class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant = qq.QuantStub()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(32)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(64 * 4 * 4, 128)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(128, 10)
        self.dequant = qq.DeQuantStub()

    def forward(self, x):
        x = self.quant(x)
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.pool(self.relu2(self.bn2(self.conv2(x))))
        x = torch.flatten(x, 1)
        x = self.fc2(self.relu3(self.fc1(x)))
        return self.dequant(x)

    def fuse_model(self, qat: bool = False):
        fuse = qq.fuse_modules_qat if qat else qq.fuse_modules
        fuse(self, [["conv1", "bn1", "relu1"], ["conv2", "bn2", "relu2"], ["fc1", "relu3"]], inplace=True)


class DigitsLSTM(nn.Module):
    """Reads an 8x8 digit row by row."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(8, 128, num_layers=2, batch_first=True)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        out, _ = self.lstm(x.flatten(1, 2))  # N x 8 rows x 8 pixels
        return self.fc(out[:, -1])


# --- training and measuring ------------------------------------------------------------
def train(model, data, seconds, desc, lr=2e-3):
    (x, y), _ = data
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    start = time.perf_counter()
    with tqdm(desc=desc, unit="step", leave=False, mininterval=0.5) as bar:
        while time.perf_counter() - start < seconds:
            idx = torch.randint(0, len(y), (64,))
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    return model.eval()


def accuracy(model, data) -> float:
    _, (x, y) = data
    with torch.inference_mode():
        return (model(x).argmax(1) == y).float().mean().item() * 100


def calibrate(model, data, batches=8):
    (x, _), _ = data
    with torch.inference_mode():
        for i in tqdm(range(batches), desc="calibrating", leave=False, mininterval=0.5):
            model(x[i * 64:(i + 1) * 64])


def size_kb(model) -> float:
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.tell() / 1024


def latency_us(model, x, repeats=50) -> float:
    with torch.inference_mode():
        for _ in range(3):
            model(x)
        samples = []
        for _ in range(repeats):
            start = time.perf_counter_ns()
            model(x)
            samples.append((time.perf_counter_ns() - start) / 1e3)
    return statistics.median(samples)


def script_save_reload(model, x):
    """Scripts, saves and reloads the model; checks the reloaded one gives the same output."""
    scripted = torch.jit.script(model)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.pt")
        torch.jit.save(scripted, path)
        loaded = torch.jit.load(path)
    with torch.inference_mode():
        same = torch.equal(loaded(x), model(x))
    return loaded, same


def native_static(float_model, data, qat_trained=None):
    """The same flow with torch.ao (native kernels), for comparison; None where it fails."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import torch.ao.quantization as tq

            m = copy.deepcopy(float_model).eval()
            m.quant, m.dequant = tq.QuantStub(), tq.DeQuantStub()
            tq.fuse_modules(m, [["conv1", "bn1", "relu1"], ["conv2", "bn2", "relu2"], ["fc1", "relu3"]],
                            inplace=True)
            m.qconfig = tq.get_default_qconfig("x86")
            tq.prepare(m, inplace=True)
            calibrate(m, data)
            tq.convert(m, inplace=True)
            return m
    except Exception as e:  # report, don't hide: the row shows it
        print(f"native torch.ao flow failed: {e}")
        return None


def native_dynamic(float_model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(float_model), {nn.LSTM, nn.Linear},
                                                      dtype=torch.qint8)


def main() -> None:
    torch.set_num_threads(1)
    print(f"qtorch kernel path: {qtorch.kernel_isa()} (CPU supports {', '.join(qtorch.supported_isas())}); "
          f"torch {torch.__version__}, 1 thread\n")
    data = digits()
    sample = data[1][0][:1]
    rows = []

    # Post-training static quantization.
    cnn = train(DigitsCNN(), data, SECONDS_OF_TRAINING, "training CNN")
    ptq = copy.deepcopy(cnn)
    ptq.fuse_model()
    ptq.qconfig = qq.get_default_qconfig()
    qq.prepare(ptq, inplace=True)
    calibrate(ptq, data)
    qq.convert(ptq, inplace=True)
    ptq_loaded, same = script_save_reload(ptq, sample)
    native = native_static(cnn, data)
    rows.append(("CNN, static PTQ", cnn, ptq_loaded, native, same))

    # Quantization-aware training, starting from the trained float model.
    qat = copy.deepcopy(cnn).train()
    qat.fuse_model(qat=True)
    qat.qconfig = qq.get_default_qat_qconfig()
    qq.prepare_qat(qat, inplace=True)
    train(qat, data, SECONDS_OF_TRAINING / 2, "QAT fine-tuning", lr=5e-4)
    qat_int8 = qq.convert(qat.eval())
    qat_loaded, same_qat = script_save_reload(qat_int8, sample)
    rows.append(("CNN, QAT", cnn, qat_loaded, native, same_qat))

    # Dynamic quantization of an LSTM.
    lstm = train(DigitsLSTM(), data, SECONDS_OF_TRAINING, "training LSTM")
    dyn = qq.quantize_dynamic(lstm, {nn.LSTM, nn.Linear}, dtype=qtorch.qint8)
    dyn_loaded, same_dyn = script_save_reload(dyn, sample)
    rows.append(("LSTM, dynamic", lstm, dyn_loaded, native_dynamic(lstm), same_dyn))

    header = (f"{'model':18s} {'acc float':>9s} {'acc int8':>9s} {'acc native':>10s} {'KB float':>9s} "
              f"{'KB int8':>8s} {'us float':>9s} {'us qtorch':>10s} {'us native':>10s} {'reload ok':>9s}")
    print(header)
    print("-" * len(header))
    for name, float_model, q_model, native_model, reload_ok in rows:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            n_acc = f"{accuracy(native_model, data):10.1f}" if native_model is not None else f"{'-':>10s}"
            n_lat = f"{latency_us(native_model, sample):10.0f}" if native_model is not None else f"{'-':>10s}"
        print(f"{name:18s} {accuracy(float_model, data):9.1f} {accuracy(q_model, data):9.1f} {n_acc} "
              f"{size_kb(float_model):9.0f} {size_kb(q_model):8.0f} {latency_us(float_model, sample):9.0f} "
              f"{latency_us(q_model, sample):10.0f} {n_lat} {str(reload_ok):>9s}")
    print("\nacc: test accuracy (%) on 360 held-out digits; KB: state_dict size; us: median latency at batch 1;")
    print("qtorch models are the scripted, saved and reloaded ones ('reload ok': same output as before saving).")


if __name__ == "__main__":
    main()
