"""Planted mistakes and correct alternatives for 07_devices_checkpoints (see autograder/cases/__init__.py).

Each mistake breaks one rule of its exercise's text and must be caught by that rule's check with the
diagnosis given; each alternative is correct, written another way (the less common forms of the API
among them: a `torch.device` or a positional `map_location`, `torch.load` imported by name, a path
handled as a string).
"""

from autograder.cases import Alternative, Mistake

# --- get_device -----------------------------------------------------------------------

_GET_DEVICE = [
    Mistake("get_device", "returns_device", "returns_string", name="a string", code='''
def get_device(prefer_gpu=True):
    return "cuda" if prefer_gpu and torch.cuda.is_available() else "cpu"
'''),
    Mistake("get_device", "best_gpu_first", "no_availability_check", name="a GPU without asking", code='''
def get_device(prefer_gpu=True):
    return torch.device("cuda") if prefer_gpu else torch.device("cpu")
'''),
    Mistake("get_device", "best_gpu_first", "wrong_priority", name="MPS before CUDA", hidden_only=True, code='''
def get_device(prefer_gpu=True):
    if prefer_gpu and torch.backends.mps.is_available():
        return torch.device("mps")
    if prefer_gpu and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")
'''),
    Mistake("get_device", "best_gpu_first", "missing_mps", name="no MPS", hidden_only=True, code='''
def get_device(prefer_gpu=True):
    return torch.device("cuda" if prefer_gpu and torch.cuda.is_available() else "cpu")
'''),
    Mistake("get_device", "cpu_unless_preferred", "ignores_preference", name="prefer_gpu ignored", code='''
def get_device(prefer_gpu=True):
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
'''),
    Alternative("get_device", "the accelerator API", '''
def get_device(prefer_gpu=True):
    accelerator = torch.accelerator.current_accelerator() if prefer_gpu else None
    return accelerator if accelerator is not None and accelerator.type in ("cuda", "mps") else torch.device("cpu")
'''),
    Alternative("get_device", "counting GPUs, with an index", '''
def get_device(prefer_gpu=True):
    if not prefer_gpu:
        return torch.device("cpu")
    if torch.cuda.device_count() > 0:
        return torch.device("cuda", 0)
    return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
'''),
]

# --- move_to --------------------------------------------------------------------------

_MOVE_TO = [
    Mistake("move_to", "moves_every_tensor", "not_moved", name="the moved copy thrown away", code='''
def move_to(obj, device):
    if isinstance(obj, torch.Tensor):
        obj.to(device)
        return obj
    if isinstance(obj, dict):
        return {k: move_to(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to(item, device) for item in obj)
    return obj
'''),
    Mistake("move_to", "moves_every_tensor", "not_recursive", name="one level deep", code='''
def move_to(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, (list, tuple)):
        return type(obj)(item.to(device) if isinstance(item, torch.Tensor) else item for item in obj)
    if isinstance(obj, dict):
        return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in obj.items()}
    return obj
'''),
    Mistake("move_to", "keeps_values", "tensor_changed", name="a cast to float32", code='''
def move_to(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device, dtype=torch.float32)
    if isinstance(obj, dict):
        return {k: move_to(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to(item, device) for item in obj)
    return obj
'''),
    Mistake("move_to", "keeps_structure", "structure_changed", name="tuples become lists", code='''
def move_to(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: move_to(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [move_to(item, device) for item in obj]
    return obj
'''),
    Mistake("move_to", "keeps_structure", "structure_changed", name="empty containers dropped", code='''
def move_to(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: move_to(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to(item, device) for item in obj if not (isinstance(item, (list, tuple, dict)) and not item))
    return obj
'''),
    Mistake("move_to", "other_values_untouched", "non_tensor_moved", name=".to() on everything", code='''
def move_to(obj, device):
    if isinstance(obj, dict):
        return {k: move_to(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to(item, device) for item in obj)
    return obj.to(device)
'''),
    Mistake("move_to", "other_values_untouched", "non_tensor_changed", name="other values become None", code='''
def move_to(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: move_to(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to(item, device) for item in obj)
    return None
'''),
    Mistake("move_to", "caller_batch_unchanged", "modified_input", name="assigns into the caller's containers", code='''
def move_to(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        for key in obj:
            obj[key] = move_to(obj[key], device)
        return obj
    if isinstance(obj, list):
        obj[:] = [move_to(item, device) for item in obj]
        return obj
    if isinstance(obj, tuple):
        return tuple(move_to(item, device) for item in obj)
    return obj
'''),
    Mistake("move_to", "caller_batch_unchanged", "modified_input", name="the caller's dict, refilled", code='''
def move_to(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        moved = {key: move_to(value, device) for key, value in obj.items()}
        obj.clear()
        obj.update(moved)
        return obj
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to(item, device) for item in obj)
    return obj
'''),
    Alternative("move_to", "torch's tree_map", '''
from torch.utils._pytree import tree_map

def move_to(obj, device):
    return tree_map(lambda value: value.to(device) if isinstance(value, torch.Tensor) else value, obj)
'''),
    Alternative("move_to", "exact type checks", '''
def move_to(obj, device):
    if torch.is_tensor(obj):
        return obj.to(device=device)
    if type(obj) in (list, tuple):
        return type(obj)(move_to(item, device) for item in obj)
    if type(obj) is dict:
        return {key: move_to(value, device) for key, value in obj.items()}
    return obj
'''),
]

# --- save_checkpoint ------------------------------------------------------------------

_SAVED = '''{"model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict(), "epoch": int(epoch)}'''


def _atomic(content: str) -> str:
    """A save_checkpoint that writes ``content`` safely (to a file beside path, then os.replace)."""
    return f'''
import os

def save_checkpoint(path, model, optimizer, epoch):
    partial = path.with_name(path.name + ".partial")
    torch.save({content}, partial)
    os.replace(partial, path)
'''


_SAVE = [
    Mistake("save_checkpoint", "at_path", "no_file", name="a fixed file name", code='''
import os

def save_checkpoint(path, model, optimizer, epoch):
    partial = path.with_name("checkpoint.partial")
    torch.save({"model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict(),
                "epoch": int(epoch)}, partial)
    os.replace(partial, path.with_name("latest.pt"))
'''),
    Mistake("save_checkpoint", "at_path", "left_files_behind", name="the temporary file copied, not moved", code='''
import shutil

def save_checkpoint(path, model, optimizer, epoch):
    partial = path.with_name(path.name + ".partial")
    torch.save({"model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict(),
                "epoch": int(epoch)}, partial)
    shutil.copyfile(partial, path)
'''),
    Mistake("save_checkpoint", "weights_only", "pickled_module", name="the whole module pickled", code=_atomic(
        '''{"model_state_dict": model, "optimizer_state_dict": optimizer.state_dict(), "epoch": int(epoch)}''')),
    Mistake("save_checkpoint", "weights_only", "pickled_module", name="the method, not its result", code=_atomic(
        '''{"model_state_dict": model.state_dict, "optimizer_state_dict": optimizer.state_dict(), "epoch": int(epoch)}''')),
    Mistake("save_checkpoint", "three_keys", "missing_keys", name="no optimizer", code=_atomic(
        '''{"model_state_dict": model.state_dict(), "epoch": int(epoch)}''')),
    Mistake("save_checkpoint", "three_keys", "missing_keys", name="other key names", code=_atomic(
        '''{"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": int(epoch)}''')),
    Mistake("save_checkpoint", "three_keys", "extra_keys", name="an extra key", code=_atomic(
        '''{"model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict(), "epoch": int(epoch), "loss": 0.1}''')),
    Mistake("save_checkpoint", "epoch_int", "epoch_not_int", name="the epoch as a tensor", code=_atomic(
        '''{"model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict(), "epoch": torch.tensor(epoch)}''')),
    Mistake("save_checkpoint", "epoch_int", "wrong_epoch", name="the next epoch", code=_atomic(
        '''{"model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict(), "epoch": int(epoch) + 1}''')),
    Mistake("save_checkpoint", "resumes_exactly", "optimizer_not_restored", name="a fresh optimizer's state", code='''
import os

def save_checkpoint(path, model, optimizer, epoch):
    fresh = type(optimizer)(model.parameters(), **optimizer.defaults)
    partial = path.with_name(path.name + ".partial")
    torch.save({"model_state_dict": model.state_dict(), "optimizer_state_dict": fresh.state_dict(),
                "epoch": int(epoch)}, partial)
    os.replace(partial, path)
'''),
    Mistake("save_checkpoint", "resumes_exactly", "wrong_state_dict", name="parameters without buffers", code=_atomic(
        '''{"model_state_dict": dict(model.named_parameters()), "optimizer_state_dict": optimizer.state_dict(), "epoch": int(epoch)}''')),
    Mistake("save_checkpoint", "never_half_written", "half_written", name="written straight to path", code=f'''
def save_checkpoint(path, model, optimizer, epoch):
    torch.save({_SAVED}, path)
'''),
    Mistake("save_checkpoint", "never_half_written", "half_written", name="the old one deleted first", code=f'''
import os

def save_checkpoint(path, model, optimizer, epoch):
    partial = path.with_name(path.name + ".partial")
    if path.exists():
        os.remove(path)
    torch.save({_SAVED}, partial)
    os.replace(partial, path)
'''),
    Alternative("save_checkpoint", "a temporary file and Path.replace, the path as a string", '''
import os
import tempfile
from collections import OrderedDict

def save_checkpoint(path, model, optimizer, epoch):
    handle, partial = tempfile.mkstemp(dir=os.path.dirname(os.fspath(path)), suffix=".tmp")
    os.close(handle)
    try:
        torch.save(OrderedDict(epoch=int(epoch), model_state_dict=model.state_dict(),
                               optimizer_state_dict=optimizer.state_dict()), partial)
        Path(partial).replace(path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
'''),
    Alternative("save_checkpoint", "torch.save imported by name, into an open file", f'''
import os
from torch import save

def save_checkpoint(path, model, optimizer, epoch):
    partial = str(path) + ".new"
    with open(partial, "wb") as out:
        save({_SAVED}, out)
    os.replace(partial, path)
'''),
]

# --- load_checkpoint ------------------------------------------------------------------


_RESTORE_OPTIMIZER = """    if optimizer is not None:
        optimizer.load_state_dict(checkpoint["optimizer_state_dict"])"""


def _loader(read: str, body: str = _RESTORE_OPTIMIZER, returns: str = 'checkpoint["epoch"]') -> str:
    return f"""
def load_checkpoint(path, model, optimizer=None, map_location="cpu"):
    checkpoint = {read}
    model.load_state_dict(checkpoint["model_state_dict"])
{body}
    return {returns}
"""


_READ = 'torch.load(path, map_location=map_location, weights_only=True)'

_LOAD = [
    Mistake("load_checkpoint", "returns_epoch", "wrong_type", name="the whole checkpoint returned",
            code=_loader(_READ, returns="checkpoint")),
    Mistake("load_checkpoint", "returns_epoch", "wrong_type", name="the epoch as a tensor",
            code=_loader(_READ, returns='torch.tensor(checkpoint["epoch"])')),
    Mistake("load_checkpoint", "returns_epoch", "wrong_epoch", name="the next epoch",
            code=_loader(_READ, returns='checkpoint["epoch"] + 1')),
    Mistake("load_checkpoint", "restores_model", "model_not_restored", name="into a new model", code='''
import copy

def load_checkpoint(path, model, optimizer=None, map_location="cpu"):
    checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    model = copy.deepcopy(model)
    model.load_state_dict(checkpoint["model_state_dict"])
    if optimizer is not None:
        optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
    return checkpoint["epoch"]
'''),
    Mistake("load_checkpoint", "restores_optimizer", "optimizer_not_restored", name="the model alone",
            code=_loader(_READ, body="    pass")),
    Mistake("load_checkpoint", "optimizer_optional", "optimizer_required", name="the optimizer always restored",
            code=_loader(_READ, body='    optimizer.load_state_dict(checkpoint["optimizer_state_dict"])')),
    Mistake("load_checkpoint", "reads_safely", "unsafe_load", name="weights_only=False",
            code=_loader('torch.load(path, map_location=map_location, weights_only=False)')),
    Mistake("load_checkpoint", "map_location", "map_location_ignored", name="always onto the CPU",
            code=_loader('torch.load(path, map_location="cpu", weights_only=True)')),
    Alternative("load_checkpoint", "map_location by position, as a torch.device (issue 20)", '''
def load_checkpoint(path, model, optimizer=None, map_location="cpu"):
    state = torch.load(path, torch.device(map_location), weights_only=True)
    model.load_state_dict(state["model_state_dict"], strict=True)
    if optimizer:
        optimizer.load_state_dict(state["optimizer_state_dict"])
    return int(state["epoch"])
'''),
    Alternative("load_checkpoint", "torch.load imported by name, from an open file", '''
from torch import load as read_checkpoint

def load_checkpoint(path, model, optimizer=None, map_location="cpu"):
    with open(path, "rb") as file:
        checkpoint = read_checkpoint(file, map_location=map_location)
    model.load_state_dict(checkpoint["model_state_dict"])
    if optimizer is not None:
        optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
    return checkpoint["epoch"]
'''),
]

# --- repair: train_keeping_the_best ---------------------------------------------------


def _keeping(keep: str, restore: str = "model.load_state_dict(best_state)", returns: str = "best_loss") -> str:
    return f'''
import copy
import io

def train_keeping_the_best(model, optimizer, loss_fn, train_batches, val_batch, epochs):
    best_loss, best_state = float("inf"), None
    for epoch in range(epochs):
        model.train()
        for inputs, targets in train_batches:
            optimizer.zero_grad()
            loss_fn(model(inputs), targets).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            val_loss = loss_fn(model(val_batch[0]), val_batch[1]).item()
        if val_loss < best_loss:
            best_loss, best_state = val_loss, {keep}
    {restore}
    return {returns}
'''


_KEEPING = [
    Mistake("train_keeping_the_best", "keeps_the_best", "best_state_aliased", name="the given code",
            code=_keeping("model.state_dict()")),
    Mistake("train_keeping_the_best", "keeps_the_best", "best_state_aliased", name="a shallow copy of the dict",
            code=_keeping("dict(model.state_dict())")),
    Mistake("train_keeping_the_best", "keeps_the_best", "buffers_not_kept", name="the parameters alone",
            code=_keeping("{name: p.detach().clone() for name, p in model.named_parameters()}",
                          restore="model.load_state_dict(best_state, strict=False)")),
    Mistake("train_keeping_the_best", "returns_lowest_loss", "wrong_loss", name="the last loss returned",
            code=_keeping("copy.deepcopy(model.state_dict())", returns="val_loss")),
    Alternative("train_keeping_the_best", "every tensor cloned", _keeping(
        "{name: tensor.detach().clone() for name, tensor in model.state_dict().items()}")),
    Alternative("train_keeping_the_best", "through torch.save into memory", '''
import io

def train_keeping_the_best(model, optimizer, loss_fn, train_batches, val_batch, epochs):
    best_loss, best = float("inf"), io.BytesIO()
    for epoch in range(epochs):
        model.train()
        for inputs, targets in train_batches:
            optimizer.zero_grad()
            loss_fn(model(inputs), targets).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            val_loss = loss_fn(model(val_batch[0]), val_batch[1]).item()
        if val_loss < best_loss:
            best_loss, best = val_loss, io.BytesIO()
            torch.save(model.state_dict(), best)
    best.seek(0)
    model.load_state_dict(torch.load(best, weights_only=True))
    return best_loss
'''),
]

# --- predict, then run: resume_prediction ---------------------------------------------

_PREDICTION = [
    Mistake("resume_prediction", "one_of_the_choices", "not_a_choice", name="not a choice", code='''
def resume_prediction():
    return "A and B"
'''),
    Mistake("resume_prediction", "matches_the_run", "wrong_prediction", name="both", hidden_only=True, code='''
def resume_prediction():
    return "both"
'''),
    Alternative("resume_prediction", "in lower case", '''
def resume_prediction():
    return "b"
'''),
]

# --- challenge: train_tiny_model ------------------------------------------------------

_HALF = '''
class Half(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer.half()

    def forward(self, x):
        return self.layer(x.half()).float()


def fitted(X, y, steps=200, hidden=None):
    torch.manual_seed(0)
    layer = nn.Linear(64, 10) if hidden is None else nn.Sequential(nn.Linear(64, hidden), nn.Linear(hidden, 10))
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.05)
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(layer(X), y).backward()
        optimizer.step()
    return layer
'''

_TINY = [
    Mistake("train_tiny_model", "logits", "wrong_input", name="float16 weights fed float32", code=_HALF + '''
def train_tiny_model(X, y):
    return fitted(X, y).half()
'''),
    Mistake("train_tiny_model", "byte_budget", "over_byte_budget", name="float32 weights", code=_HALF + '''
def train_tiny_model(X, y):
    return fitted(X, y)
'''),
    Mistake("train_tiny_model", "accuracy", "below_target", name="two hidden units", code=_HALF + '''
def train_tiny_model(X, y):
    return Half(fitted(X, y, hidden=2))
'''),
    Mistake("train_tiny_model", "state_complete", "state_incomplete", name="weights in a plain list", code='''
class ListWeights(nn.Module):
    """float32 weights kept in a plain list: the state dict is empty (0 bytes), and a checkpoint loses them."""

    def __init__(self, layer):
        super().__init__()
        self.weights = [layer.weight.detach().clone(), layer.bias.detach().clone()]

    def forward(self, x):
        return x @ self.weights[0].T + self.weights[1]


def train_tiny_model(X, y):
    torch.manual_seed(0)
    layer = nn.Linear(64, 10)
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.05)
    for _ in range(200):
        optimizer.zero_grad()
        nn.functional.cross_entropy(layer(X), y).backward()
        optimizer.step()
    return ListWeights(layer)
'''),
    Mistake("train_tiny_model", "state_complete", "state_incomplete", name="weights shared by the class", code='''
class Shared(nn.Module):
    """Its weights live on the class: every model of the design answers with the last one trained."""

    layer = None

    def forward(self, x):
        return type(self).layer(x)


def train_tiny_model(X, y):
    torch.manual_seed(0)
    layer = nn.Linear(64, 10)
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.05)
    for _ in range(200):
        optimizer.zero_grad()
        nn.functional.cross_entropy(layer(X), y).backward()
        optimizer.step()
    Shared.layer = layer
    return Shared()
'''),
    Mistake("train_tiny_model", "cpu_budget", "over_time_budget", name="11 s of CPU", code=_HALF + '''
import time

burnt = []

def train_tiny_model(X, y):
    if not burnt:  # the first call only, so that planting this costs one budget, not every test's
        burnt.append(True)
        started = time.process_time()
        while time.process_time() - started < 10.5:
            sum(range(10_000))
    return Half(fitted(X, y))
'''),
    Mistake("train_tiny_model", "given_data_only", "loads_other_data", name="loads the digits itself",
            code=_HALF + '''
from autograder.data import load_digits

def train_tiny_model(X, y):
    X, y = load_digits()
    return Half(fitted(X, y))
'''),
    Mistake("train_tiny_model", "given_data_only", "below_target", name="trained at cell time on every digit",
            code=_HALF + '''
everything = Half(fitted(X, y))   # the notebook's X and y: all 1797 digits, the held-out ones too

def train_tiny_model(X, y):
    return everything
'''),
    Alternative("train_tiny_model", "bfloat16", _HALF.replace(".half()", ".to(torch.bfloat16)") + '''
def train_tiny_model(X, y):
    return Half(fitted(X, y))
'''),
    Alternative("train_tiny_model", "float16 parameters of its own", '''
class TinyLinear(nn.Module):
    def __init__(self, weight, bias):
        super().__init__()
        self.weight = nn.Parameter(weight.detach().half(), requires_grad=False)
        self.bias = nn.Parameter(bias.detach().half(), requires_grad=False)

    def forward(self, x):
        return (x.half() @ self.weight.T + self.bias).float()


def train_tiny_model(X, y):
    generator = torch.Generator().manual_seed(1)
    weight = (torch.randn(10, 64, generator=generator) * 0.05).requires_grad_()
    bias = torch.zeros(10, requires_grad=True)
    optimizer = torch.optim.Adam([weight, bias], lr=0.05)
    for _ in range(250):
        optimizer.zero_grad()
        nn.functional.cross_entropy(X @ weight.T + bias, y).backward()
        optimizer.step()
    return TinyLinear(weight, bias)
'''),
]

CASES = _GET_DEVICE + _MOVE_TO + _SAVE + _LOAD + _KEEPING + _PREDICTION + _TINY
