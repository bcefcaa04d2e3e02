"""Planted mistakes and correct alternatives for 05_loss_optim (see autograder.cases)."""

from autograder.cases import Alternative, Mistake

# --- softmax_cross_entropy ---------------------------------------------------------------

_CE_HEAD = "def softmax_cross_entropy(logits, targets):\n"


def _ce(body: str) -> str:
    return _CE_HEAD + "".join(f"    {line}\n" for line in body.strip().splitlines())


CE_LOGSUMEXP = _ce("""
lse = torch.logsumexp(logits, dim=1)
return (lse - logits.gather(1, targets.unsqueeze(1)).squeeze(1)).mean()
""")

_SOFTMAX_CROSS_ENTROPY = [
    Alternative("softmax_cross_entropy", "logsumexp and gather", CE_LOGSUMEXP),
    Alternative("softmax_cross_entropy", "nll_loss on log-probabilities written by hand", _ce("""
shifted = logits - logits.max(dim=1, keepdim=True).values
log_probs = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
return F.nll_loss(log_probs, targets)
""")),
    Alternative("softmax_cross_entropy", "one-hot mask", _ce("""
lse = torch.logsumexp(logits, dim=-1)
picked = (logits * F.one_hot(targets, logits.shape[1])).sum(dim=-1)
return torch.mean(lse - picked)
""")),
    Mistake("softmax_cross_entropy", "by_hand", "used_builtin", _ce("return F.cross_entropy(logits, targets)"),
            name="F.cross_entropy"),
    Mistake("softmax_cross_entropy", "by_hand", "used_builtin", _ce("return nn.CrossEntropyLoss()(logits, targets)"),
            name="nn.CrossEntropyLoss"),
    Mistake("softmax_cross_entropy", "by_hand", "used_builtin",
            _ce("return F.nll_loss(F.log_softmax(logits, dim=1), targets)"), name="F.log_softmax"),
    Mistake("softmax_cross_entropy", "by_hand", "used_builtin",
            _ce("return F.nll_loss(torch.log_softmax(logits, dim=1), targets)"), name="torch.log_softmax"),
    Mistake("softmax_cross_entropy", "by_hand", "used_builtin",
            _ce("return -logits.log_softmax(dim=1)[torch.arange(len(targets)), targets].mean()"),
            name="Tensor.log_softmax"),
    Mistake("softmax_cross_entropy", "by_hand", "used_builtin",
            _ce("return nn.NLLLoss()(nn.LogSoftmax(dim=1)(logits), targets)"), name="nn.LogSoftmax"),
    Mistake("softmax_cross_entropy", "by_hand", "used_builtin", _ce("""
try:
    return F.cross_entropy(logits, targets)
except Exception:
    lse = torch.logsumexp(logits, dim=1)
    return (lse - logits[torch.arange(len(targets)), targets]).mean()
"""), name="swallows the stop"),
    Mistake("softmax_cross_entropy", "by_hand", "used_builtin", _ce("""
try:
    return F.cross_entropy(logits, targets)
except Exception as exc:
    raise RuntimeError("could not compute the loss") from exc
"""), name="turns the stop into another error"),
    Mistake("softmax_cross_entropy", "stable", "overflow", _ce("""
probs = logits.exp() / logits.exp().sum(dim=1, keepdim=True)
return -probs[torch.arange(len(targets)), targets].log().mean()
"""), name="naive softmax"),
    Mistake("softmax_cross_entropy", "equals_ce", "sum_not_mean",
            _ce("return (torch.logsumexp(logits, dim=1) - logits[torch.arange(len(targets)), targets]).sum()"),
            name="sum"),
    Mistake("softmax_cross_entropy", "equals_ce", "not_reduced",
            _ce("return torch.logsumexp(logits, dim=1) - logits[torch.arange(len(targets)), targets]"),
            name="one loss per sample"),
    Mistake("softmax_cross_entropy", "equals_ce", "double_softmax", _ce("""
p = torch.softmax(logits, dim=1)
return (torch.logsumexp(p, dim=1) - p[torch.arange(len(targets)), targets]).mean()
"""), name="softmax first"),
    Mistake("softmax_cross_entropy", "equals_ce", "wrong_indexing",
            _ce("return (torch.logsumexp(logits, dim=1) - logits[:, targets]).mean()"), name="logits[:, targets]"),
    Mistake("softmax_cross_entropy", "equals_ce", "raised", _ce("""
lse = torch.logsumexp(logits, dim=1)
return (lse - (logits * F.one_hot(targets)).sum(dim=1)).mean()
"""), name="one-hot sized by the batch's targets", hidden_only=True),
    Mistake("softmax_cross_entropy", "differentiable", "detached", _ce("""
lse = torch.logsumexp(logits, dim=1)
return torch.tensor((lse - logits[torch.arange(len(targets)), targets]).mean().item())
"""), name="a new tensor from the number"),
]

# --- DigitsClassifier -----------------------------------------------------------------------


def _classifier(init: str, forward: str) -> str:
    return ("class DigitsClassifier(nn.Module):\n    def __init__(self, hidden=32):\n        super().__init__()\n"
            + "".join(f"        {line}\n" for line in init.strip().splitlines())
            + "\n    def forward(self, x):\n"
            + "".join(f"        {line}\n" for line in forward.strip().splitlines()))


_TWO_LAYERS = "self.fc1 = nn.Linear(64, hidden)\nself.fc2 = nn.Linear(hidden, 10)"

_DIGITS_CLASSIFIER = [
    Alternative("DigitsClassifier", "functional ReLU", _classifier(_TWO_LAYERS, "return self.fc2(F.relu(self.fc1(x)))")),
    Alternative("DigitsClassifier", "named layers in an OrderedDict", "from collections import OrderedDict\n\n" + _classifier(
        'self.layers = nn.Sequential(OrderedDict([("hidden", nn.Linear(64, hidden)), ("relu", nn.ReLU()), '
        '("logits", nn.Linear(hidden, 10))]))', "return self.layers(x)")),
    Alternative("DigitsClassifier", "output layer registered first", _classifier(
        "self.out = nn.Linear(hidden, 10)\nself.hidden = nn.Linear(64, hidden)",
        "return self.out(torch.relu(self.hidden(x)))")),
    Mistake("DigitsClassifier", "logits_shape", "wrong_shape", _classifier(_TWO_LAYERS, "return self.fc2(F.relu(self.fc1(x))).T"),
            name="transposed logits"),
    Mistake("DigitsClassifier", "raw_logits", "double_softmax",
            _classifier(_TWO_LAYERS, "return torch.softmax(self.fc2(F.relu(self.fc1(x))), dim=1)"), name="softmax"),
    Mistake("DigitsClassifier", "raw_logits", "double_softmax", _classifier(
        "self.net = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10), nn.Softmax(dim=1))",
        "return self.net(x)"), name="nn.Softmax in the Sequential"),
    Mistake("DigitsClassifier", "raw_logits", "double_softmax",
            _classifier(_TWO_LAYERS, "return torch.sigmoid(self.fc2(F.relu(self.fc1(x))))"), name="sigmoid"),
    Mistake("DigitsClassifier", "raw_logits", "not_logits",
            _classifier(_TWO_LAYERS, "return F.log_softmax(self.fc2(F.relu(self.fc1(x))), dim=1)"), name="log-softmax"),
    Mistake("DigitsClassifier", "hidden_layer", "missing_bias", _classifier(
        "self.fc1 = nn.Linear(64, hidden)\nself.fc2 = nn.Linear(hidden, 10, bias=False)",
        "return self.fc2(F.relu(self.fc1(x)))"), name="no bias"),
    Mistake("DigitsClassifier", "hidden_layer", "missing_activation", _classifier(_TWO_LAYERS, "return self.fc2(self.fc1(x))"),
            name="no ReLU"),
    Mistake("DigitsClassifier", "hidden_layer", "layers_in_plain_list", _classifier(
        "self.layers = [nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10)]",
        "for layer in self.layers:\n    x = layer(x)\nreturn x"), name="layers in a plain list"),
    Mistake("DigitsClassifier", "hidden_layer", "wrong_parameter_count", _classifier(
        "self.fc1 = nn.Linear(64, 32)\nself.fc2 = nn.Linear(32, 10)", "return self.fc2(F.relu(self.fc1(x)))"),
        name="ignores hidden", hidden_only=True),
    Mistake("DigitsClassifier", "hidden_layer", "detached", _classifier(_TWO_LAYERS, "return self.fc2(F.relu(self.fc1(x))).detach()"),
            name="detached output"),
]

# --- make_optimizer ------------------------------------------------------------------------


def _optimizer(body: str) -> str:
    return "def make_optimizer(model, lr=0.1, momentum=0.0):\n" + "".join(
        f"    {line}\n" for line in body.strip().splitlines())


_MAKE_OPTIMIZER = [
    Alternative("make_optimizer", "a parameter group",
                _optimizer('return torch.optim.SGD([{"params": list(model.parameters())}], lr=lr, momentum=momentum)')),
    Alternative("make_optimizer", "positional lr, parameters as a list",
                _optimizer("return torch.optim.SGD(list(model.parameters()), lr, momentum=momentum)")),
    Mistake("make_optimizer", "sgd", "wrong_optimizer", _optimizer("return torch.optim.Adam(model.parameters(), lr=lr)"),
            name="Adam"),
    Mistake("make_optimizer", "every_parameter", "missing_parameters",
            _optimizer("return torch.optim.SGD(next(model.children()).parameters(), lr=lr, momentum=momentum)"),
            name="first layer only"),
    Mistake("make_optimizer", "every_parameter", "missing_parameters", _optimizer(
        "return torch.optim.SGD([p.detach().clone().requires_grad_() for p in model.parameters()], lr=lr, "
        "momentum=momentum)"), name="copies of the parameters"),
    Mistake("make_optimizer", "settings", "lr_ignored",
            _optimizer("return torch.optim.SGD(model.parameters(), lr=0.1, momentum=momentum)"), name="fixed lr"),
    Mistake("make_optimizer", "settings", "momentum_ignored", _optimizer("return torch.optim.SGD(model.parameters(), lr=lr)"),
            name="no momentum"),
    Mistake("make_optimizer", "settings", "wrong_update", _optimizer(
        "return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, nesterov=momentum > 0)"), name="Nesterov"),
    Mistake("make_optimizer", "settings", "wrong_update", _optimizer(
        "return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=1e-3)"), name="weight decay"),
]

# --- training_step ---------------------------------------------------------------------------


def _step(body: str) -> str:
    return "def training_step(model, loss_fn, optimizer, X, y):\n" + "".join(
        f"    {line}\n" for line in body.strip().splitlines())


STEP_WITHOUT_ZERO_GRAD = _step("""
model.train()
loss = loss_fn(model(X), y)
loss.backward()
optimizer.step()
return loss.item()
""")

_TRAINING_STEP = [
    Alternative("training_step", "model.zero_grad()", _step("""
model.train()
model.zero_grad()
loss = loss_fn(model(X), y)
loss.backward()
optimizer.step()
return loss.item()
""")),
    Alternative("training_step", "zero_grad(set_to_none=False)", _step("""
model.train()
optimizer.zero_grad(set_to_none=False)
loss = loss_fn(model(X), y)
loss.backward()
optimizer.step()
return loss.item()
""")),
    Alternative("training_step", "clears after the forward pass, float()", _step("""
model.train()
loss = loss_fn(model(X), y)
optimizer.zero_grad()
loss.backward()
optimizer.step()
return float(loss)
""")),
    Alternative("training_step", "gradients set to None by hand", _step("""
model.train()
for p in model.parameters():
    p.grad = None
loss = loss_fn(model(X), y)
loss.backward()
optimizer.step()
return loss.item()
""")),
    Alternative("training_step", "optimizer.step(closure)", _step("""
model.train()

def closure():
    optimizer.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    return loss

return optimizer.step(closure).item()
""")),
    Mistake("training_step", "float_loss", "wrong_type", _step("""
model.train()
optimizer.zero_grad()
loss = loss_fn(model(X), y)
loss.backward()
optimizer.step()
return loss
"""), name="returns the tensor"),
    Mistake("training_step", "float_loss", "wrong_type", _step("""
model.train()
optimizer.zero_grad()
loss = loss_fn(model(X), y)
loss.backward()
optimizer.step()
return loss.detach()
"""), name="returns a detached tensor"),
    Mistake("training_step", "float_loss", "wrong_loss", _step("""
model.train()
optimizer.zero_grad()
loss_fn(model(X), y).backward()
optimizer.step()
with torch.no_grad():
    return loss_fn(model(X), y).item()
"""), name="the loss after the step"),
    Mistake("training_step", "one_step", "no_update", _step("""
model.train()
optimizer.zero_grad()
loss = loss_fn(model(X), y)
loss.backward()
return loss.item()
"""), name="never steps"),
    Mistake("training_step", "one_step", "extra_steps", _step("""
model.train()
optimizer.zero_grad()
loss = loss_fn(model(X), y)
loss.backward()
optimizer.step()
optimizer.step()
return loss.item()
"""), name="two steps"),
    Mistake("training_step", "one_step", "no_update", _step("""
model.train()
model.zero_grad()
loss = loss_fn(model(X), y)
loss.backward()
with torch.no_grad():
    for p in model.parameters():
        p -= 0.1 * p.grad
return loss.item()
"""), name="an update by hand"),
    Mistake("training_step", "one_step", "no_update", _step("""
model.train()
own = torch.optim.SGD(model.parameters(), lr=0.1)
own.zero_grad()
loss = loss_fn(model(X), y)
loss.backward()
own.step()
return loss.item()
"""), name="an optimizer of its own"),
    Mistake("training_step", "uses_loss_fn", "loss_fn_ignored", _step("""
model.train()
optimizer.zero_grad()
loss = F.cross_entropy(model(X), y)
loss.backward()
optimizer.step()
return loss.item()
"""), name="F.cross_entropy instead of loss_fn"),
    Mistake("training_step", "uses_loss_fn", "double_softmax", _step("""
model.train()
optimizer.zero_grad()
loss = loss_fn(torch.softmax(model(X), dim=1), y)
loss.backward()
optimizer.step()
return loss.item()
"""), name="softmax before the loss"),
    Mistake("training_step", "fresh_gradients", "grads_accumulate", STEP_WITHOUT_ZERO_GRAD, name="never clears"),
    Mistake("training_step", "fresh_gradients", "grads_accumulate", _step("""
model.train()
loss = loss_fn(model(X), y)
loss.backward()
optimizer.step()
optimizer.zero_grad()
return loss.item()
"""), name="clears after the step"),
    Mistake("training_step", "fresh_gradients", "no_update", _step("""
model.train()
optimizer.zero_grad()
loss = loss_fn(model(X), y)
loss.backward()
optimizer.zero_grad()
optimizer.step()
return loss.item()
"""), name="clears between backward and step"),
    Mistake("training_step", "fresh_gradients", "no_update", _step("""
model.train()
optimizer.zero_grad()
loss = loss_fn(model(X), y)
optimizer.step()
return loss.item()
"""), name="no backward"),
    Mistake("training_step", "train_mode", "not_train_mode", _step("""
optimizer.zero_grad()
loss = loss_fn(model(X), y)
loss.backward()
optimizer.step()
return loss.item()
"""), name="never sets train mode"),
    Mistake("training_step", "train_mode", "not_train_mode", _step("""
optimizer.zero_grad()
loss = loss_fn(model(X), y)
loss.backward()
optimizer.step()
model.train()
return loss.item()
"""), name="train mode after the forward pass"),
    Mistake("training_step", "train_mode", "not_train_mode", _step("""
model.train
optimizer.zero_grad()
loss = loss_fn(model(X), y)
loss.backward()
optimizer.step()
return loss.item()
"""), name="model.train without parentheses"),
]

# --- predicted_start_loss --------------------------------------------------------------------


def _prediction(value: str) -> str:
    return f"def predicted_start_loss():\n    return {value}\n"


_PREDICTED_START_LOSS = [
    Alternative("predicted_start_loss", "log 10", "import math\n\n\ndef predicted_start_loss():\n    return math.log(10)\n"),
    Alternative("predicted_start_loss", "a rounder number", _prediction("2.35")),
    Mistake("predicted_start_loss", "a_loss", "not_a_number", _prediction('"2.3"'), name="a string"),
    Mistake("predicted_start_loss", "a_loss", "impossible_loss", _prediction("-2.3"), name="a negative loss"),
    Mistake("predicted_start_loss", "right_value", "wrong_prediction", _prediction("0.1"),
            name="the probability, not the loss", hidden_only=True),
    Mistake("predicted_start_loss", "right_value", "wrong_prediction", _prediction("1.0"), name="a guess",
            hidden_only=True),
]

# --- train_with_momentum ----------------------------------------------------------------------

_REPAIR_HEAD = "def train_with_momentum(model, X, y, steps=100, lr=0.5, momentum=0.9):\n"


def _repair(body: str) -> str:
    return _REPAIR_HEAD + "".join(f"    {line}\n" for line in body.strip().splitlines())


_TRAIN_WITH_MOMENTUM = [
    Alternative("train_with_momentum", "a loop that appends", _repair("""
loss_fn = nn.CrossEntropyLoss()
optimizer = make_optimizer(model, lr=lr, momentum=momentum)
losses = []
for _ in range(steps):
    losses.append(training_step(model, loss_fn, optimizer, X, y))
return losses
""")),
    Alternative("train_with_momentum", "torch.optim.SGD made directly", _repair("""
optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
return [training_step(model, nn.CrossEntropyLoss(), optimizer, X, y) for _ in range(steps)]
""")),
    Mistake("train_with_momentum", "one_optimizer", "momentum_lost", _repair("""
loss_fn = nn.CrossEntropyLoss()
losses = []
for _ in range(steps):
    optimizer = make_optimizer(model, lr=lr, momentum=momentum)
    losses.append(training_step(model, loss_fn, optimizer, X, y))
return losses
"""), name="the colleague's helper, unrepaired"),
    Mistake("train_with_momentum", "one_optimizer", "momentum_lost", _repair("""
loss_fn = nn.CrossEntropyLoss()
optimizer = make_optimizer(model, lr=lr)
return [training_step(model, loss_fn, optimizer, X, y) for _ in range(steps)]
"""), name="one optimizer, without the momentum"),
    Mistake("train_with_momentum", "losses", "wrong_type", _repair("""
loss_fn = nn.CrossEntropyLoss()
optimizer = make_optimizer(model, lr=lr, momentum=momentum)
for _ in range(steps):
    loss = training_step(model, loss_fn, optimizer, X, y)
return loss
"""), name="only the last loss"),
    Mistake("train_with_momentum", "losses", "wrong_length", _repair("""
loss_fn = nn.CrossEntropyLoss()
optimizer = make_optimizer(model, lr=lr, momentum=momentum)
losses = [training_step(model, loss_fn, optimizer, X, y) for _ in range(steps)]
return losses[1:]
"""), name="drops the first loss"),
    Mistake("train_with_momentum", "one_optimizer", "make_optimizer_broken", cells={
        "make_optimizer": _optimizer("return torch.optim.SGD(model.parameters(), lr=lr)")},
        name="make_optimizer forgets the momentum"),
    Mistake("train_with_momentum", "one_optimizer", "training_step_broken", cells={"training_step": _step("""
model.train()
optimizer.zero_grad()
loss = loss_fn(model(X), y)
loss.backward()
return loss.item()
""")}, name="a training_step that never steps, named as the cause"),
]

# --- fast_optimizer (challenge) ----------------------------------------------------------------

_FAST_OPTIMIZER = [
    Alternative("fast_optimizer", "Adam", "def fast_optimizer(model):\n    return torch.optim.Adam(model.parameters(), lr=0.03)\n"),
    Alternative("fast_optimizer", "SGD, larger steps", "def fast_optimizer(model):\n"
                "    return torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)\n"),
    Mistake("fast_optimizer", "target", "below_target",
            "def fast_optimizer(model):\n    return torch.optim.SGD(model.parameters(), lr=0.1)\n", name="plain SGD"),
    Mistake("fast_optimizer", "target", "below_target",
            "def fast_optimizer(model):\n    return torch.optim.SGD(model.parameters(), lr=50.0, momentum=0.9)\n",
            name="diverges"),
    Mistake("fast_optimizer", "optimizer_over_model", "wrong_optimizer",
            "def fast_optimizer(model):\n    return [torch.optim.SGD(model.parameters(), lr=0.5)]\n", name="a list"),
    Mistake("fast_optimizer", "optimizer_over_model", "missing_parameters",
            "def fast_optimizer(model):\n    return torch.optim.SGD(model[0].parameters(), lr=0.5, momentum=0.9)\n",
            name="first layer only"),
    Mistake("fast_optimizer", "target", "training_step_broken", cells={"training_step": STEP_WITHOUT_ZERO_GRAD},
            name="training_step never clears"),
]

CASES = (_SOFTMAX_CROSS_ENTROPY + _DIGITS_CLASSIFIER + _MAKE_OPTIMIZER + _TRAINING_STEP + _PREDICTED_START_LOSS
         + _TRAIN_WITH_MOMENTUM + _FAST_OPTIMIZER)
