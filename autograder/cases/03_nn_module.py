"""Planted mistakes and correct alternatives for 03_nn_module (see autograder.cases).

Each code string replaces the exercise's answer cell and runs after the notebook's given cells (the
setup cell's imports: math, torch, nn, train_module, circle_points, ...)."""

from autograder.cases import Alternative, Mistake

_SIMPLE = '''class SimpleModel(nn.Module):
    def __init__(self, num_features):
        super().__init__()
        self.linear = {layer}

    def forward(self, x):
        return {forward}
'''


def _simple(layer="nn.Linear(num_features, 1)", forward="torch.sigmoid(self.linear(x))"):
    return _SIMPLE.format(layer=layer, forward=forward)


_MANUAL = '''class ManualLogisticModule(nn.Module):
    def __init__(self, num_features):
        super().__init__()
        bound = 1 / math.sqrt(num_features)
{init}

    def forward(self, x):
        return {forward}
'''


def _manual(init="""        self.W = nn.Parameter(torch.empty(num_features, 1).uniform_(-bound, bound))
        self.b = nn.Parameter(torch.zeros(1))""", forward="torch.sigmoid(x @ self.W + self.b)"):
    return _MANUAL.format(init=init, forward=forward)


def _count(body):
    return f"def count_parameters(model, trainable_only=True):\n    {body}\n"


def _load(body):
    return "def load_manual_weights(model, W, b):\n" + "".join(f"    {line}\n" for line in body.splitlines())


def _snapshot(body):
    return "def snapshot_parameters(model):\n" + "".join(f"    {line}\n" for line in body.splitlines())


_CIRCLE = '''class CircleClassifier(nn.Module):
    def __init__(self):
        super().__init__()
{init}

    def forward(self, x):
        return {forward}
'''


def _circle(init, forward):
    return _CIRCLE.format(init=init, forward=forward)


CASES = [
    # --- SimpleModel ---
    Mistake("SimpleModel", "linear_attribute", "not_a_module", name="a plain class",
            code=_simple().replace("class SimpleModel(nn.Module):", "class SimpleModel:").replace(
                "        super().__init__()\n", "")),
    Mistake("SimpleModel", "linear_attribute", "missing_super_init", name="no super().__init__()",
            code=_simple().replace("        super().__init__()\n", "")),
    Mistake("SimpleModel", "linear_attribute", "wrong_layer_size", name="two outputs",
            code=_simple(layer="nn.Linear(num_features, 2)", forward="torch.sigmoid(self.linear(x))[:, :1]")),
    Mistake("SimpleModel", "linear_attribute", "missing_attribute", name="the layer under another name",
            code=_simple().replace("self.linear", "self.layer")),
    Mistake("SimpleModel", "weights_and_bias", "missing_bias",
            code=_simple(layer="nn.Linear(num_features, 1, bias=False)")),
    Mistake("SimpleModel", "probabilities", "missing_sigmoid", code=_simple(forward="self.linear(x)")),
    Mistake("SimpleModel", "probabilities", "double_sigmoid",
            code=_simple(forward="torch.sigmoid(torch.sigmoid(self.linear(x)))")),
    Mistake("SimpleModel", "in_graph", "detached", code=_simple(forward="torch.sigmoid(self.linear(x)).detach()")),
    Alternative("SimpleModel", "torch.sigmoid in forward, keyword arguments",
                _simple(layer="nn.Linear(in_features=num_features, out_features=1)")),
    Alternative("SimpleModel", "the sigmoid written out", _simple(forward="1 / (1 + torch.exp(-self.linear(x)))")),

    # --- ManualLogisticModule ---
    Mistake("ManualLogisticModule", "two_parameters", "not_registered", name="plain tensors",
            code=_manual(init="""        self.W = (torch.rand(num_features, 1) * 2 - 1) * bound
        self.W.requires_grad_()
        self.b = torch.zeros(1, requires_grad=True)""")),
    Mistake("ManualLogisticModule", "two_parameters", "wrong_shape", name="W transposed",
            code=_manual(init="""        self.W = nn.Parameter(torch.empty(1, num_features).uniform_(-bound, bound))
        self.b = nn.Parameter(torch.zeros(1))""", forward="torch.sigmoid(x @ self.W.T + self.b)")),
    Mistake("ManualLogisticModule", "two_parameters", "wrong_parameters", name="an extra parameter",
            code=_manual(init="""        self.W = nn.Parameter(torch.empty(num_features, 1).uniform_(-bound, bound))
        self.b = nn.Parameter(torch.zeros(1))
        self.scale = nn.Parameter(torch.ones(1))""", forward="torch.sigmoid(self.scale * (x @ self.W + self.b))")),
    Mistake("ManualLogisticModule", "W_uniform", "zero_init", name="W at zero",
            code=_manual(init="""        self.W = nn.Parameter(torch.zeros(num_features, 1))
        self.b = nn.Parameter(torch.zeros(1))""")),
    Mistake("ManualLogisticModule", "W_uniform", "narrow_range", name="uniform in ±1/sqrt(n + 1)",
            code=_manual(init="""        bound = 1 / math.sqrt(num_features + 1)
        self.W = nn.Parameter(torch.empty(num_features, 1).uniform_(-bound, bound))
        self.b = nn.Parameter(torch.zeros(1))""")),
    Mistake("ManualLogisticModule", "W_uniform", "narrow_range", name="uniform in [0, bound)",
            code=_manual(init="""        self.W = nn.Parameter(torch.rand(num_features, 1) * bound)
        self.b = nn.Parameter(torch.zeros(1))""")),
    Mistake("ManualLogisticModule", "W_uniform", "out_of_range", name="uniform in ±1",
            code=_manual(init="""        self.W = nn.Parameter(torch.empty(num_features, 1).uniform_(-1, 1))
        self.b = nn.Parameter(torch.zeros(1))""")),
    Mistake("ManualLogisticModule", "W_uniform", "not_uniform", name="a clamped normal",
            code=_manual(init="""        self.W = nn.Parameter((torch.randn(num_features, 1) * bound).clamp(-bound, bound))
        self.b = nn.Parameter(torch.zeros(1))""")),
    Mistake("ManualLogisticModule", "b_start", "out_of_range", name="b at one",
            code=_manual(init="""        self.W = nn.Parameter(torch.empty(num_features, 1).uniform_(-bound, bound))
        self.b = nn.Parameter(torch.ones(1))""")),
    Mistake("ManualLogisticModule", "global_generator", "seed_ignored", name="a generator of its own",
            code=_manual(init="""        generator = torch.Generator().manual_seed(0)
        self.W = nn.Parameter((torch.rand(num_features, 1, generator=generator) * 2 - 1) * bound)
        self.b = nn.Parameter(torch.zeros(1))""")),
    Mistake("ManualLogisticModule", "global_generator", "seed_ignored", name="torch.manual_seed inside",
            code=_manual(init="""        torch.manual_seed(0)
        self.W = nn.Parameter(torch.empty(num_features, 1).uniform_(-bound, bound))
        self.b = nn.Parameter(torch.zeros(1))""")),
    Mistake("ManualLogisticModule", "global_generator", "not_deterministic", name="a generator seeded at random",
            code=_manual(init="""        generator = torch.Generator()
        generator.seed()
        self.W = nn.Parameter((torch.rand(num_features, 1, generator=generator) * 2 - 1) * bound)
        self.b = nn.Parameter(torch.zeros(1))""")),
    Mistake("ManualLogisticModule", "forward_formula", "missing_sigmoid", code=_manual(forward="x @ self.W + self.b")),
    Mistake("ManualLogisticModule", "forward_formula", "missing_bias", code=_manual(forward="torch.sigmoid(x @ self.W)")),
    Mistake("ManualLogisticModule", "in_graph", "detached",
            code=_manual(forward="torch.sigmoid(x @ self.W.detach() + self.b.detach())")),
    Alternative("ManualLogisticModule", "nn.init and F.linear", _manual(init="""        self.W = nn.Parameter(torch.empty(num_features, 1))
        self.b = nn.Parameter(torch.empty(1))
        nn.init.uniform_(self.W, -bound, bound)
        nn.init.zeros_(self.b)""", forward="torch.sigmoid(nn.functional.linear(x, self.W.T, self.b))")),
    Alternative("ManualLogisticModule", "torch.rand stretched, b uniform too, addmm", _manual(init="""        self.W = nn.Parameter((torch.rand(num_features, 1) * 2 - 1) * bound)
        self.b = nn.Parameter((torch.rand(1) * 2 - 1) * bound)""", forward="torch.sigmoid(torch.addmm(self.b, x, self.W))")),

    # --- count_parameters ---
    Mistake("count_parameters", "python_int", "wrong_type",
            code=_count("return torch.tensor(sum(p.numel() for p in model.parameters() "
                        "if p.requires_grad or not trainable_only))")),
    Mistake("count_parameters", "numbers", "counted_tensors",
            code=_count("return len([p for p in model.parameters() if p.requires_grad or not trainable_only])")),
    Mistake("count_parameters", "numbers", "raised", name="torch.cat of no parameters",
            code=_count("return int(torch.cat([p.flatten() for p in model.parameters() "
                        "if p.requires_grad or not trainable_only]).numel())")),
    Mistake("count_parameters", "trainable_only", "ignores_requires_grad",
            code=_count("return sum(p.numel() for p in model.parameters())")),
    Alternative("count_parameters", "math.prod of the shapes",
                _count("return sum(math.prod(p.shape) for p in model.parameters() "
                       "if p.requires_grad or not trainable_only)")),
    Alternative("count_parameters", "a loop over named_parameters", '''def count_parameters(model, trainable_only=True):
    total = 0
    for _, p in model.named_parameters():
        if trainable_only and not p.requires_grad:
            continue
        total += p.numel()
    return total
'''),

    # --- predict_mixed_count ---
    Mistake("predict_mixed_count", "whole_number", "wrong_type", name="a string",
            code='def predict_mixed_count():\n    return "12"\n'),
    Mistake("predict_mixed_count", "whole_number", "wrong_type", name="a float",
            code="def predict_mixed_count():\n    return 12.0\n"),
    Mistake("predict_mixed_count", "right", "wrong_prediction", name="every tensor counted", hidden_only=True,
            code="def predict_mixed_count():\n    return 20\n"),
    Mistake("predict_mixed_count", "right", "wrong_prediction", name="the frozen layer counted", hidden_only=True,
            code="def predict_mixed_count():\n    return 18\n"),
    Alternative("predict_mixed_count", "worked out in the code", "def predict_mixed_count():\n    return 4 * 2 + 2 + 2\n"),

    # --- load_manual_weights ---
    Mistake("load_manual_weights", "same_outputs", "weight_layout_transposed", name="W not transposed",
            code=_load("with torch.no_grad():\n    model.linear.weight.copy_(W)\n    model.linear.bias.copy_(b)")),
    Mistake("load_manual_weights", "same_outputs", "wrong_values", name="the bias forgotten",
            code=_load("with torch.no_grad():\n    model.linear.weight.copy_(W.T)")),
    Mistake("load_manual_weights", "same_outputs", "SimpleModel_broken", name="SimpleModel without its sigmoid",
            cells={"SimpleModel": _simple(forward="self.linear(x)")}),
    Mistake("load_manual_weights", "in_place", "replaced_parameter", name="new parameters",
            code=_load("model.linear.weight = nn.Parameter(W.T.clone())\nmodel.linear.bias = nn.Parameter(b.clone())")),
    Mistake("load_manual_weights", "in_place", "wrong_return", name="returns the model",
            code=_load("with torch.no_grad():\n    model.linear.weight.copy_(W.T)\n    model.linear.bias.copy_(b)\n"
                       "return model")),
    Mistake("load_manual_weights", "not_recorded", "update_in_graph", name="no torch.no_grad()",
            code=_load("model.linear.weight.copy_(W.T)\nmodel.linear.bias.copy_(b)")),
    Mistake("load_manual_weights", "not_recorded", "update_in_graph", name="frozen afterwards",
            code=_load("with torch.no_grad():\n    model.linear.weight.copy_(W.T)\n    model.linear.bias.copy_(b)\n"
                       "model.linear.requires_grad_(False)")),
    Mistake("load_manual_weights", "copies_values", "shares_storage", name="through .data",
            code=_load("model.linear.weight.data = W.T\nmodel.linear.bias.data = b")),
    Alternative("load_manual_weights", "load_state_dict",
                _load('model.load_state_dict({"linear.weight": W.reshape(1, -1), "linear.bias": b})')),
    Alternative("load_manual_weights", "slice assignment under no_grad",
                _load("with torch.no_grad():\n    model.linear.weight[:] = W.T\n    model.linear.bias[:] = b")),

    # --- snapshot_parameters (repair) ---
    Mistake("snapshot_parameters", "names", "wrong_keys", name="frozen parameters left out",
            code=_snapshot("return {name: p.detach().clone() for name, p in model.named_parameters() "
                           "if p.requires_grad}")),
    Mistake("snapshot_parameters", "names", "wrong_keys", name="the whole state_dict",
            code=_snapshot("return {name: t.clone() for name, t in model.state_dict().items()}")),
    Mistake("snapshot_parameters", "names", "wrong_type", name="a list",
            code=_snapshot("return [p.detach().clone() for p in model.parameters()]")),
    Mistake("snapshot_parameters", "values_kept", "shares_memory", name="as given (detach)",
            code=_snapshot("return {name: p.detach() for name, p in model.named_parameters()}")),
    Mistake("snapshot_parameters", "values_kept", "shares_memory", name=".data",
            code=_snapshot("return {name: p.data for name, p in model.named_parameters()}")),
    Mistake("snapshot_parameters", "plain_values", "tracked_by_autograd", name="clone without detach",
            code=_snapshot("return {name: p.clone() for name, p in model.named_parameters()}")),
    Mistake("snapshot_parameters", "plain_values", "tracked_by_autograd", name="a deep copy of the parameters",
            code=_snapshot("import copy\nreturn copy.deepcopy(dict(model.named_parameters()))")),
    Mistake("snapshot_parameters", "model_untouched", "changed_the_model", name="requires_grad turned off",
            code=_snapshot("snapshot = {}\nfor name, p in model.named_parameters():\n    p.requires_grad_(False)\n"
                           "    snapshot[name] = p.clone()\nreturn snapshot")),
    Alternative("snapshot_parameters", "clone under torch.no_grad",
                _snapshot("with torch.no_grad():\n    return {name: p.clone() for name, p in model.named_parameters()}")),
    Alternative("snapshot_parameters", "from state_dict, parameters only",
                _snapshot("names = {name for name, _ in model.named_parameters()}\n"
                          "return {k: v.clone() for k, v in model.state_dict().items() if k in names}")),

    # --- CircleClassifier (challenge) ---
    Mistake("CircleClassifier", "probabilities", "not_probabilities", name="scores, no sigmoid",
            code=_circle("        self.linear = nn.Linear(4, 1)", "self.linear(torch.cat([x, x ** 2], dim=1))")),
    Mistake("CircleClassifier", "budget", "over_budget", name="a wide MLP",
            code=_circle("        self.net = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 1), nn.Sigmoid())",
                         "self.net(x)")),
    Mistake("CircleClassifier", "target", "below_target", name="a straight line",
            code=_circle("        self.linear = nn.Linear(2, 1)", "torch.sigmoid(self.linear(x))")),
    Mistake("CircleClassifier", "target", "below_target", name="its weights in a plain tensor",
            code=_circle("""        self.scale = nn.Parameter(torch.ones(1))
        self.W = torch.zeros(4, 1, requires_grad=True)""",
                         "torch.sigmoid(self.scale * (torch.cat([x, x ** 2], dim=1) @ self.W))")),
    Mistake("CircleClassifier", "other_circles", "below_target", name="the notebook's centre written in",
            hidden_only=True,
            code=_circle("        self.linear = nn.Linear(1, 1)",
                         "torch.sigmoid(self.linear(((x - torch.tensor([0.3, -0.2])) ** 2).sum(dim=1, keepdim=True)))")),
    Alternative("CircleClassifier", "the squared distance from the origin as a third column", _circle(
        """        self.weights = nn.Parameter(torch.zeros(3, 1))
        self.bias = nn.Parameter(torch.zeros(1))""",
        "torch.sigmoid(torch.cat([x, (x * x).sum(dim=1, keepdim=True)], dim=1) @ self.weights + self.bias)")),
]
