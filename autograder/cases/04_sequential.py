"""Planted mistakes and correct alternatives for 04_sequential (see autograder.cases).

Each code string replaces the exercise's answer cell and runs after the notebook's given cells (the
setup cell's imports: torch, nn, F, OrderedDict, copy, make_spirals, train_spirals, ...)."""

from autograder.cases import Alternative, Mistake

_NO_SEQ = '''class TwoLayerModelNoSequential(nn.Module):
    def __init__(self, num_features, hidden=3):
        super().__init__()
        self.linear1 = nn.Linear(num_features, {hidden}{bias1})
        self.relu = nn.ReLU()
        self.linear2 = nn.Linear({hidden}, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        return {forward}
'''


def _no_seq(forward="self.sigmoid(self.linear2(self.relu(self.linear1(x))))", hidden="hidden", bias1=""):
    return _NO_SEQ.format(forward=forward, hidden=hidden, bias1=bias1)


_SEQ = '''class TwoLayerModel(nn.Module):
    def __init__(self, num_features, hidden=3):
        super().__init__()
        self.network = {network}

    def forward(self, x):
        return {forward}
'''


def _seq(layers="nn.Linear(num_features, hidden), nn.ReLU(), nn.Linear(hidden, 1), nn.Sigmoid()",
         forward="self.network(x)", container="nn.Sequential"):
    return _SEQ.format(network=f"{container}({layers})" if container != "list" else f"[{layers}]", forward=forward)


_RESIDUAL = '''class ResidualMLP(nn.Module):
    def __init__(self, num_features, width=8, depth=2):
        super().__init__()
        self.stem = nn.Linear(num_features, width)
        {blocks}
        self.head = nn.Linear(width, 1)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        {loop}
        return torch.sigmoid(self.head(x))
'''


def _residual(blocks="self.blocks = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])",
              loop="for block in self.blocks:\n            x = x + torch.relu(block(x))"):
    return _RESIDUAL.format(blocks=blocks, loop=loop)


_MLP = '''def make_mlp(sizes, activation=nn.ReLU):
    if len(sizes) < 2:
        raise ValueError("an MLP needs two sizes")
    layers = []
    for i in range(len(sizes) - 1):
        if i > 0:
            layers.append({activation})
        layers.append(nn.Linear(sizes[i], sizes[i + 1]{bias}))
    return {result}
'''


def _mlp(activation="activation()", bias="", result="nn.Sequential(*layers)"):
    return _MLP.format(activation=activation, bias=bias, result=result)


def _count(body, check=True):
    guard = "    if len(sizes) < 2:\n        raise ValueError('two sizes at least')\n" if check else ""
    return f"def mlp_param_count(sizes):\n{guard}    return {body}\n"


def _spiral(body, before=""):
    return f"{before}def spiral_classifier():\n    return {body}\n"


_GOOD_SPIRAL = "nn.Sequential(make_mlp([2, 32, 32, 1]), nn.Sigmoid())"

CASES = [
    # --- TwoLayerModelNoSequential ---
    Mistake("TwoLayerModelNoSequential", "layers", "layers_in_plain_list", name="layers in a list",
            code='''class TwoLayerModelNoSequential(nn.Module):
    def __init__(self, num_features, hidden=3):
        super().__init__()
        self.layers = [nn.Linear(num_features, hidden), nn.ReLU(), nn.Linear(hidden, 1), nn.Sigmoid()]

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x
'''),
    Mistake("TwoLayerModelNoSequential", "layers", "missing_attribute", name="other names",
            code=_no_seq().replace("linear1", "first").replace("linear2", "second")),
    Mistake("TwoLayerModelNoSequential", "layers", "wrong_layer_size", name="ignores hidden", hidden_only=True,
            code=_no_seq(hidden="3")),
    Mistake("TwoLayerModelNoSequential", "all_registered", "missing_bias", code=_no_seq(bias1=", bias=False")),
    Mistake("TwoLayerModelNoSequential", "forward_formula", "missing_sigmoid",
            code=_no_seq(forward="self.linear2(self.relu(self.linear1(x)))")),
    Mistake("TwoLayerModelNoSequential", "forward_formula", "missing_activation",
            code=_no_seq(forward="self.sigmoid(self.linear2(self.linear1(x)))")),
    Mistake("TwoLayerModelNoSequential", "forward_formula", "double_sigmoid",
            code=_no_seq(forward="self.sigmoid(self.sigmoid(self.linear2(self.relu(self.linear1(x)))))")),
    Mistake("TwoLayerModelNoSequential", "forward_formula", "broadcast_shape", name="squeezed output",
            code=_no_seq(forward="self.sigmoid(self.linear2(self.relu(self.linear1(x)))).squeeze(1)")),
    Mistake("TwoLayerModelNoSequential", "forward_formula", "wrong_activation", name="a sigmoid between",
            code=_no_seq(forward="self.sigmoid(self.linear2(torch.sigmoid(self.linear1(x))))")),
    Mistake("TwoLayerModelNoSequential", "in_graph", "detached",
            code=_no_seq(forward="self.sigmoid(self.linear2(self.relu(self.linear1(x)))).detach()")),
    Alternative("TwoLayerModelNoSequential", "functional activations", '''class TwoLayerModelNoSequential(nn.Module):
    def __init__(self, num_features, hidden=3):
        super().__init__()
        self.linear1 = nn.Linear(num_features, hidden)
        self.linear2 = nn.Linear(hidden, 1)

    def forward(self, x):
        return torch.sigmoid(self.linear2(F.relu(self.linear1(x))))
'''),

    # --- TwoLayerModel ---
    Mistake("TwoLayerModel", "network_attribute", "layers_in_plain_list", name="a plain list",
            code=_seq(container="list", forward="self.network[3](self.network[2](self.network[1](self.network[0](x))))")),
    Mistake("TwoLayerModel", "network_attribute", "not_sequential", name="an nn.ModuleList",
            code=_seq(container="nn.ModuleList", layers="[nn.Linear(num_features, hidden), nn.ReLU(), "
                      "nn.Linear(hidden, 1), nn.Sigmoid()]",
                      forward="self.network[3](self.network[2](self.network[1](self.network[0](x))))")),
    Mistake("TwoLayerModel", "layers_in_order", "missing_sigmoid", name="the sigmoid in forward",
            code=_seq(layers="nn.Linear(num_features, hidden), nn.ReLU(), nn.Linear(hidden, 1)",
                      forward="torch.sigmoid(self.network(x))")),
    Mistake("TwoLayerModel", "layers_in_order", "wrong_layers", name="a sigmoid between",
            code=_seq(layers="nn.Linear(num_features, hidden), nn.Sigmoid(), nn.Linear(hidden, 1), nn.Sigmoid()")),
    Mistake("TwoLayerModel", "layers_in_order", "wrong_layer_size", name="ignores hidden", hidden_only=True,
            code=_seq(layers="nn.Linear(num_features, 3), nn.ReLU(), nn.Linear(3, 1), nn.Sigmoid()")),
    Mistake("TwoLayerModel", "all_registered", "missing_bias",
            code=_seq(layers="nn.Linear(num_features, hidden, bias=False), nn.ReLU(), nn.Linear(hidden, 1), "
                      "nn.Sigmoid()")),
    Mistake("TwoLayerModel", "forward_is_network", "double_sigmoid", code=_seq(forward="torch.sigmoid(self.network(x))")),
    Mistake("TwoLayerModel", "forward_is_network", "missing_activation", name="forward skips the ReLU",
            code=_seq(forward="self.network[3](self.network[2](self.network[0](x)))")),
    Mistake("TwoLayerModel", "forward_is_network", "detached", code=_seq(forward="self.network(x).detach()")),
    Alternative("TwoLayerModel", "named layers", _seq(layers='''OrderedDict([
            ("hidden", nn.Linear(num_features, hidden)),
            ("relu", nn.ReLU()),
            ("output", nn.Linear(hidden, 1)),
            ("sigmoid", nn.Sigmoid()),
        ])''')),

    # --- ResidualMLP (repair) ---
    Mistake("ResidualMLP", "names_kept", "missing_attribute", name="the blocks renamed",
            code=_residual(blocks="self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])",
                           loop="for block in self.layers:\n            x = x + torch.relu(block(x))")),
    Mistake("ResidualMLP", "all_trained", "layers_in_plain_list", name="as given (a plain list)",
            code=_residual(blocks="self.blocks = [nn.Linear(width, width) for _ in range(depth)]")),
    Mistake("ResidualMLP", "all_trained", "shared_block", name="one block repeated",
            code=_residual(blocks="self.blocks = nn.ModuleList([nn.Linear(width, width)] * depth)")),
    Mistake("ResidualMLP", "all_trained", "not_trained", name="the blocks' outputs detached",
            code=_residual(loop="for block in self.blocks:\n            x = x + torch.relu(block(x)).detach()")),
    Mistake("ResidualMLP", "same_computation", "drops_residual", name="the sums left out",
            code=_residual(loop="for block in self.blocks:\n            x = torch.relu(block(x))")),
    Mistake("ResidualMLP", "same_computation", "wrong_values", name="the blocks in reverse order",
            code=_residual(loop="for block in reversed(self.blocks):\n            x = x + torch.relu(block(x))")),
    Alternative("ResidualMLP", "an nn.Sequential as the container, indexed in the loop",
                _residual(blocks="self.blocks = nn.Sequential(*[nn.Linear(width, width) for _ in range(depth)])",
                          loop="for i in range(len(self.blocks)):\n            x = x + torch.relu(self.blocks[i](x))")),
    Alternative("ResidualMLP", "the list kept, each block registered by add_module",
                _residual(blocks="self.blocks = [nn.Linear(width, width) for _ in range(depth)]\n"
                                 "        for i, block in enumerate(self.blocks):\n"
                                 "            self.add_module(f'block{i}', block)")),

    # --- make_mlp ---
    Mistake("make_mlp", "sequential", "layers_in_plain_list", name="the list returned", code=_mlp(result="layers")),
    Mistake("make_mlp", "sequential", "not_sequential", name="an nn.ModuleList", code=_mlp(result="nn.ModuleList(layers)")),
    Mistake("make_mlp", "sequential", "activation_not_called", code=_mlp(activation="activation")),
    Mistake("make_mlp", "linear_layers", "missing_bias", code=_mlp(bias=", bias=False")),
    Mistake("make_mlp", "linear_layers", "wrong_layer_size", name="sizes reversed", code='''def make_mlp(sizes, activation=nn.ReLU):
    if len(sizes) < 2:
        raise ValueError("two sizes at least")
    sizes = list(reversed(sizes))
    layers = [nn.Linear(sizes[0], sizes[1])]
    for n_in, n_out in zip(sizes[1:], sizes[2:]):
        layers += [activation(), nn.Linear(n_in, n_out)]
    return nn.Sequential(*layers)
'''),
    Mistake("make_mlp", "between_only", "activation_after_last", code='''def make_mlp(sizes, activation=nn.ReLU):
    if len(sizes) < 2:
        raise ValueError("two sizes at least")
    layers = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        layers += [nn.Linear(n_in, n_out), activation()]
    return nn.Sequential(*layers)
'''),
    Mistake("make_mlp", "between_only", "missing_activation", name="no activations", code='''def make_mlp(sizes, activation=nn.ReLU):
    if len(sizes) < 2:
        raise ValueError("two sizes at least")
    return nn.Sequential(*(nn.Linear(n_in, n_out) for n_in, n_out in zip(sizes, sizes[1:])))
'''),
    Mistake("make_mlp", "fresh_activations", "shared_activation", name="one activation reused", code='''def make_mlp(sizes, activation=nn.ReLU):
    if len(sizes) < 2:
        raise ValueError("two sizes at least")
    act = activation()
    layers = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        layers += [nn.Linear(n_in, n_out), act]
    return nn.Sequential(*layers[:-1])
'''),
    Mistake("make_mlp", "fresh_activations", "activation_ignored", name="always nn.ReLU", code=_mlp(activation="nn.ReLU()")),
    Mistake("make_mlp", "runs_in_order", "forward_skips_layers", name="a Sequential that skips its activations",
            code='''class SkipsActivations(nn.Sequential):
    def forward(self, x):
        for layer in self:
            if isinstance(layer, nn.Linear):
                x = layer(x)
        return x


''' + _mlp(result="SkipsActivations(*layers)")),
    Mistake("make_mlp", "value_error", "no_value_error", name="no check of the sizes", code='''def make_mlp(sizes, activation=nn.ReLU):
    layers = []
    for i in range(len(sizes) - 1):
        if i > 0:
            layers.append(activation())
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
    return nn.Sequential(*layers)
'''),
    Mistake("make_mlp", "value_error", "wrong_exception", name="an IndexError", code='''def make_mlp(sizes, activation=nn.ReLU):
    layers = [nn.Linear(sizes[0], sizes[1])]
    for n_in, n_out in zip(sizes[1:], sizes[2:]):
        layers += [activation(), nn.Linear(n_in, n_out)]
    return nn.Sequential(*layers)
'''),
    Alternative("make_mlp", "named layers in an OrderedDict", '''def make_mlp(sizes, activation=nn.ReLU):
    if len(sizes) < 2:
        raise ValueError("need two sizes")
    named = OrderedDict()
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        named[f"linear{i}"] = nn.Linear(n_in, n_out)
        named[f"act{i}"] = activation()
    named.popitem()
    return nn.Sequential(named)
'''),
    Alternative("make_mlp", "built by recursion with add_module", '''def make_mlp(sizes, activation=nn.ReLU):
    if len(sizes) < 2:
        raise ValueError("need two sizes")
    network = nn.Sequential() if len(sizes) == 2 else make_mlp(sizes[:-1], activation)
    if len(sizes) > 2:
        network.add_module(f"act{len(sizes) - 3}", activation())
    network.add_module(f"linear{len(sizes) - 2}", nn.Linear(sizes[-2], sizes[-1]))
    return network
'''),

    # --- mlp_param_count ---
    Mistake("mlp_param_count", "the_count", "missing_bias", code=_count("sum(a * b for a, b in zip(sizes, sizes[1:]))")),
    Mistake("mlp_param_count", "the_count", "wrong_count", name="a bias per input",
            code=_count("sum(a * b + a for a, b in zip(sizes, sizes[1:]))")),
    Mistake("mlp_param_count", "the_count", "wrong_type", name="a float",
            code=_count("float(sum(a * b + b for a, b in zip(sizes, sizes[1:])))")),
    Mistake("mlp_param_count", "without_building", "built_model", name="counted on a built network",
            code=_count("sum(p.numel() for p in make_mlp(sizes).parameters())")),
    Mistake("mlp_param_count", "value_error", "no_value_error", name="0 for too few sizes",
            code=_count("sum(a * b + b for a, b in zip(sizes, sizes[1:]))", check=False)),
    Alternative("mlp_param_count", "a loop", '''def mlp_param_count(sizes):
    if len(sizes) < 2:
        raise ValueError("need two sizes")
    total = 0
    for i in range(1, len(sizes)):
        total += sizes[i - 1] * sizes[i] + sizes[i]
    return total
'''),

    # --- predict_straight_boundaries ---
    Mistake("predict_straight_boundaries", "letters", "wrong_form", name="out of order",
            code='def predict_straight_boundaries():\n    return "ca"\n'),
    Mistake("predict_straight_boundaries", "letters", "wrong_type", name="a list",
            code='def predict_straight_boundaries():\n    return ["a", "c"]\n'),
    Mistake("predict_straight_boundaries", "right", "wrong_prediction", name="only ReLU bends", hidden_only=True,
            code='def predict_straight_boundaries():\n    return "abc"\n'),
    Alternative("predict_straight_boundaries", "the letters sorted in code",
                'def predict_straight_boundaries():\n    return "".join(sorted({"c", "a"}))\n'),

    # --- spiral_classifier (challenge) ---
    Mistake("spiral_classifier", "probabilities", "missing_sigmoid", name="raw scores",
            code=_spiral("make_mlp([2, 32, 32, 1])")),
    Mistake("spiral_classifier", "probabilities", "wrong_shape", name="two outputs",
            code=_spiral("nn.Sequential(make_mlp([2, 32, 32, 2]), nn.Sigmoid())")),
    Mistake("spiral_classifier", "probabilities", "wrong_type", name="the class, not a network", code='''class SpiralNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(make_mlp([2, 32, 32, 1]), nn.Sigmoid())

    def forward(self, x):
        return self.body(x)


def spiral_classifier():
    return SpiralNet
'''),
    Mistake("spiral_classifier", "budget", "over_budget", name="too wide",
            code=_spiral("nn.Sequential(make_mlp([2, 80, 80, 1]), nn.Sigmoid())")),
    Mistake("spiral_classifier", "fresh_model", "not_fresh", name="one network for every call",
            code=_spiral("_ONE", before=f"_ONE = {_GOOD_SPIRAL}\n\n\n")),
    Mistake("spiral_classifier", "untrained", "already_trained", name="a copy of a network trained beforehand",
            code=_spiral("copy.deepcopy(_TRAINED)", before=f'''_TRAINED = {_GOOD_SPIRAL}
train_spirals(_TRAINED, *make_spirals(400, seed=0))


''')),
    Mistake("spiral_classifier", "seeded_start", "seed_ignored", name="torch.manual_seed inside", code='''def spiral_classifier():
    torch.manual_seed(0)
    return nn.Sequential(make_mlp([2, 32, 32, 1]), nn.Sigmoid())
'''),
    Mistake("spiral_classifier", "target", "below_target", name="a straight line",
            code=_spiral("nn.Sequential(nn.Linear(2, 1), nn.Sigmoid())")),
    Mistake("spiral_classifier", "other_spirals", "below_target", name="the notebook's new points memorised",
            hidden_only=True, code='''_KNOWN_X, _KNOWN_Y = make_spirals(400, seed=1)


class Memoriser(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, x):
        guess = torch.sigmoid(self.linear(x))
        nearest = torch.cdist(x, _KNOWN_X).min(dim=1)
        known = (nearest.values < 1e-6).unsqueeze(1)
        return torch.where(known, _KNOWN_Y[nearest.indices], guess)


def spiral_classifier():
    return Memoriser()
'''),
    Alternative("spiral_classifier", "a class of its own, with tanh", '''class spiral_classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(2, 48), nn.Tanh(), nn.Linear(48, 48), nn.Tanh(), nn.Linear(48, 1))

    def forward(self, x):
        return torch.sigmoid(self.body(x))
'''),
]
