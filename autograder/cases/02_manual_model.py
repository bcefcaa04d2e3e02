"""Planted mistakes and correct alternatives for 02_manual_model (see autograder.cases).

Each mistake breaks one rule of its exercise's contract list and must be caught by that rule's check; each
alternative is correct, written another way, and every check (hidden ones included) must accept it.
"""

from autograder.cases import Alternative, Mistake


def _init(body: str) -> str:
    return "def init_params(num_features, seed=0):\n" + body


_GEN = "    generator = torch.Generator().manual_seed(seed)\n    a = 1 / math.sqrt(num_features)\n"
_ZERO_B = "    return W.requires_grad_(), torch.zeros(1, requires_grad=True)\n"


def _forward(body: str) -> str:
    return "def forward(X, W, b):\n" + body


def _bce(body: str) -> str:
    return "def bce_loss(probs, targets, eps=1e-7):\n" + body


_BCE_GUARD = ('    if probs.shape != targets.shape:\n'
              '        raise ValueError(f"probs {tuple(probs.shape)} and targets {tuple(targets.shape)} differ")\n')
_BCE_FORMULA = "-(targets * torch.log(p) + (1 - targets) * torch.log(1 - p))"


def _sgd(body: str) -> str:
    return "def sgd_step(params, lr):\n" + body


def _train(body: str, signature: str = "X, y, epochs=100, lr=0.1, seed=0") -> str:
    return f"def train_manual({signature}):\n" + body


_EPOCH = ("        loss = bce_loss(forward(X, W, b), y)\n"
          "        loss.backward()\n"
          "        sgd_step([W, b], lr)\n")


def _fit(body: str) -> str:
    return "def fit_raw_measurements(X, y):\n" + body


_STANDARDISED = ("    mean, std = X.mean(dim=0), X.std(dim=0)\n"
                 "    W, b, _ = train_manual((X - mean) / std, y, epochs=300, lr=0.5)\n")

CASES = [
    # --- init_params --------------------------------------------------------------
    Mistake("init_params", "shapes", "weight_layout_transposed", name="W in (1, n) layout", code=_init(
        _GEN + "    W = (torch.rand(1, num_features, generator=generator) * 2 - 1) * a\n" + _ZERO_B)),
    Mistake("init_params", "leaves", "not_leaf", name="W computed from a tensor that requires grad", code=_init(
        _GEN + "    W = (torch.rand(num_features, 1, generator=generator, requires_grad=True) * 2 - 1) * a\n"
               "    return W, torch.zeros(1, requires_grad=True)\n")),
    Mistake("init_params", "leaves", "wrong_dtype", name="float64", code=_init(
        _GEN + "    W = (torch.rand(num_features, 1, generator=generator, dtype=torch.float64) * 2 - 1) * a\n"
               "    return W.requires_grad_(), torch.zeros(1, dtype=torch.float64, requires_grad=True)\n")),
    Mistake("init_params", "leaves", "no_requires_grad", name="gradients never asked for", code=_init(
        _GEN + "    W = (torch.rand(num_features, 1, generator=generator) * 2 - 1) * a\n"
               "    return W, torch.zeros(1)\n")),
    Mistake("init_params", "uniform", "not_uniform", name="a clamped normal draw", code=_init(
        _GEN + "    W = torch.randn(num_features, 1, generator=generator).clamp(-a, a)\n" + _ZERO_B)),
    Mistake("init_params", "uniform", "not_uniform", name="a narrow normal draw, clamped", code=_init(
        _GEN + "    W = (torch.randn(num_features, 1, generator=generator) * a / 3).clamp(-a, a)\n" + _ZERO_B)),
    Mistake("init_params", "uniform", "not_uniform", name="only positive weights", code=_init(
        _GEN + "    W = torch.rand(num_features, 1, generator=generator) * a\n" + _ZERO_B)),
    Mistake("init_params", "scale", "out_of_range", name="uniform in ±1/sqrt(n + 1)", code=_init(
        "    generator = torch.Generator().manual_seed(seed)\n"
        "    a = 1 / math.sqrt(num_features + 1)\n"
        "    W = (torch.rand(num_features, 1, generator=generator) * 2 - 1) * a\n" + _ZERO_B)),
    Mistake("init_params", "scale", "out_of_range", name="a fixed range of ±0.2", code=_init(
        "    generator = torch.Generator().manual_seed(seed)\n"
        "    W = (torch.rand(num_features, 1, generator=generator) * 2 - 1) * 0.2\n" + _ZERO_B)),
    Mistake("init_params", "scale", "out_of_range", name="variance 1/n taken for the width", code=_init(
        "    generator = torch.Generator().manual_seed(seed)\n"
        "    a = math.sqrt(3 / num_features)\n"
        "    W = (torch.rand(num_features, 1, generator=generator) * 2 - 1) * a\n" + _ZERO_B)),
    Mistake("init_params", "bias", "out_of_range", name="a bias of one", code=_init(
        _GEN + "    W = (torch.rand(num_features, 1, generator=generator) * 2 - 1) * a\n"
               "    return W.requires_grad_(), torch.ones(1, requires_grad=True)\n")),
    Mistake("init_params", "seeded", "seed_ignored", name="always seed 0", code=_init(
        "    generator = torch.Generator().manual_seed(0)\n"
        "    a = 1 / math.sqrt(num_features)\n"
        "    W = (torch.rand(num_features, 1, generator=generator) * 2 - 1) * a\n" + _ZERO_B)),
    Mistake("init_params", "seeded", "not_deterministic", name="an unseeded draw", code=_init(
        "    a = 1 / math.sqrt(num_features)\n"
        "    W = (torch.rand(num_features, 1) * 2 - 1) * a\n" + _ZERO_B)),
    Mistake("init_params", "global_rng", "global_rng", name="the global generator reseeded", code=_init(
        "    torch.manual_seed(seed)\n"
        "    a = 1 / math.sqrt(num_features)\n"
        "    W = torch.empty(num_features, 1).uniform_(-a, a)\n"
        "    b = torch.empty(1).uniform_(-a, a)\n"
        "    return W.requires_grad_(), b.requires_grad_()\n")),
    Alternative("init_params", "uniform_ with a generator, and a uniform bias", _init(
        "    g = torch.Generator()\n"
        "    g.manual_seed(seed)\n"
        "    bound = num_features ** -0.5\n"
        "    W = torch.empty(num_features, 1).uniform_(-bound, bound, generator=g)\n"
        "    b = torch.empty(1).uniform_(-bound, bound, generator=g)\n"
        "    W.requires_grad = True\n"
        "    b.requires_grad = True\n"
        "    return W, b\n")),
    Alternative("init_params", "rand shifted by a half", _init(
        "    g = torch.Generator().manual_seed(seed)\n"
        "    W = (torch.rand(num_features, 1, generator=g) - 0.5) * (2 / num_features ** 0.5)\n"
        "    return W.requires_grad_(True), torch.zeros(1).requires_grad_(True)\n")),

    # --- forward --------------------------------------------------------------------
    Mistake("forward", "probabilities", "missing_sigmoid", name="the scores themselves", code=_forward(
        "    return X @ W + b\n")),
    Mistake("forward", "probabilities", "broadcast_shape", name="the column squeezed away", code=_forward(
        "    return (1 / (1 + torch.exp((-(X @ W + b)).clamp(max=80)))).squeeze(1)\n")),
    Mistake("forward", "probabilities", "double_sigmoid", name="the sigmoid applied twice", code=_forward(
        "    p = 0.5 * (1 + torch.tanh((X @ W + b) / 2))\n"
        "    return 0.5 * (1 + torch.tanh(p / 2))\n")),
    Mistake("forward", "graph", "detached", name="detached", code=_forward(
        "    return (0.5 * (1 + torch.tanh((X @ W + b) / 2))).detach()\n")),
    Mistake("forward", "stable", "unstable", name="the formula as written", code=_forward(
        "    return 1 / (1 + torch.exp(-(X @ W + b)))\n")),
    Mistake("forward", "stable", "unstable", name="two branches in torch.where", code=_forward(
        "    z = X @ W + b\n"
        "    return torch.where(z >= 0, 1 / (1 + torch.exp(-z)), torch.exp(z) / (1 + torch.exp(z)))\n")),
    Mistake("forward", "stable", "unstable", name="e^(-|z|): no slope at 0", code=_forward(
        "    z = X @ W + b\n"
        "    e = torch.exp(-z.abs())\n"
        "    return torch.where(z >= 0, 1 / (1 + e), e / (1 + e))\n")),
    Mistake("forward", "by_hand", "used_library_sigmoid", name="torch.sigmoid", code=_forward(
        "    return torch.sigmoid(X @ W + b)\n")),
    Mistake("forward", "by_hand", "used_library_sigmoid", name="Tensor.sigmoid", code=_forward(
        "    return X.matmul(W).add(b).sigmoid()\n")),
    Mistake("forward", "by_hand", "used_library_sigmoid", name="nn.Sigmoid", code=_forward(
        "    return torch.nn.Sigmoid()(X @ W + b)\n")),
    Mistake("forward", "by_hand", "used_library_sigmoid", name="the exponential of logsigmoid", code=_forward(
        "    return torch.exp(torch.nn.functional.logsigmoid(X @ W + b))\n")),
    Alternative("forward", "the tanh identity", _forward(
        "    return 0.5 * (1 + torch.tanh(torch.matmul(X, W).add(b) / 2))\n")),
    Alternative("forward", "softplus", _forward(
        "    return torch.exp(-torch.nn.functional.softplus(-(X @ W + b)))\n")),
    Alternative("forward", "log-sum-exp", _forward(
        "    z = X @ W + b\n"
        "    return torch.exp(z - torch.logaddexp(torch.zeros_like(z), z))\n")),
    Alternative("forward", "two branches, each with its exponent capped", _forward(
        "    z = X @ W + b\n"
        "    positive = 1 / (1 + torch.exp(-z.clamp(min=0)))\n"
        "    negative = torch.exp(z.clamp(max=0)) / (1 + torch.exp(z.clamp(max=0)))\n"
        "    return torch.where(z >= 0, positive, negative)\n")),

    # --- bce_loss -------------------------------------------------------------------
    Mistake("bce_loss", "mean_bce", "sum_not_mean", name="sum", code=_bce(
        _BCE_GUARD + "    p = probs.clamp(eps, 1 - eps)\n" + f"    return {_BCE_FORMULA}.sum()\n")),
    Mistake("bce_loss", "mean_bce", "not_reduced", name="one loss per sample", code=_bce(
        _BCE_GUARD + "    p = probs.clamp(eps, 1 - eps)\n" + f"    return {_BCE_FORMULA}\n")),
    Mistake("bce_loss", "mean_bce", "wrong_sign", name="the log-likelihood, not its negative", code=_bce(
        _BCE_GUARD + "    p = probs.clamp(eps, 1 - eps)\n"
                     "    return (targets * torch.log(p) + (1 - targets) * torch.log(1 - p)).mean()\n")),
    Mistake("bce_loss", "finite", "missing_clamp", name="no clamping", code=_bce(
        _BCE_GUARD + "    p = probs\n" + f"    return {_BCE_FORMULA}.mean()\n")),
    Mistake("bce_loss", "finite", "missing_clamp", name="clamped at the bottom only", code=_bce(
        _BCE_GUARD + "    p = probs.clamp(min=eps)\n" + f"    return {_BCE_FORMULA}.mean()\n")),
    Mistake("bce_loss", "eps", "eps_ignored", name="a fixed eps", code=_bce(
        _BCE_GUARD + "    p = probs.clamp(1e-7, 1 - 1e-7)\n" + f"    return {_BCE_FORMULA}.mean()\n")),
    Mistake("bce_loss", "shape_mismatch", "broadcast_shape", name="no shape check", code=_bce(
        "    p = probs.clamp(eps, 1 - eps)\n" + f"    return {_BCE_FORMULA}.mean()\n")),
    Mistake("bce_loss", "shape_mismatch", "broadcast_shape", name="only flat targets refused", code=_bce(
        "    if targets.dim() == 1 and probs.dim() == 2:\n"
        '        raise ValueError("targets must be a column")\n'
        "    p = probs.clamp(eps, 1 - eps)\n" + f"    return {_BCE_FORMULA}.mean()\n")),
    Mistake("bce_loss", "differentiable", "detached", name="a new tensor from .item()", code=_bce(
        _BCE_GUARD + "    p = probs.clamp(eps, 1 - eps)\n" + f"    return torch.tensor({_BCE_FORMULA}.mean().item())\n")),
    Alternative("bce_loss", "the functional API on clamped probabilities", _bce(
        "    if probs.shape != targets.shape:\n"
        '        raise ValueError("shapes differ")\n'
        "    return torch.nn.functional.binary_cross_entropy(torch.clamp(probs, min=eps, max=1 - eps), targets)\n")),
    Alternative("bce_loss", "torch.where on the target", _bce(
        "    if tuple(probs.shape) != tuple(targets.shape):\n"
        '        raise ValueError(f"{probs.shape} != {targets.shape}")\n'
        "    p = probs.clamp(eps, 1 - eps)\n"
        "    return -torch.where(targets > 0.5, p.log(), (1 - p).log()).mean()\n")),

    # --- sgd_step -------------------------------------------------------------------
    Mistake("sgd_step", "update", "not_in_place", name="a new tensor bound to the loop's name", code=_sgd(
        "    with torch.no_grad():\n"
        "        for p in params:\n"
        "            p = p - lr * p.grad\n")),
    Mistake("sgd_step", "update", "not_in_place", name="new leaves put into the list", code=_sgd(
        "    for i, p in enumerate(params):\n"
        "        params[i] = (p - lr * p.grad).detach().requires_grad_()\n")),
    Mistake("sgd_step", "update", "wrong_update", name="uphill", code=_sgd(
        "    with torch.no_grad():\n"
        "        for p in params:\n"
        "            p += lr * p.grad\n"
        "            p.grad.zero_()\n")),
    Mistake("sgd_step", "unrecorded", "update_in_graph", name="without torch.no_grad", code=_sgd(
        "    for p in params:\n"
        "        p -= lr * p.grad\n"
        "        p.grad.zero_()\n")),
    Mistake("sgd_step", "unrecorded", "update_in_graph", name="recorded results put into the list", code=_sgd(
        "    for i, p in enumerate(params):\n"
        "        params[i] = p - lr * p.grad\n")),
    Mistake("sgd_step", "clear", "grads_not_zeroed", name="gradients never cleared", code=_sgd(
        "    with torch.no_grad():\n"
        "        for p in params:\n"
        "            p -= lr * p.grad\n")),
    Mistake("sgd_step", "every_param", "not_every_parameter", name="W and b only", code=_sgd(
        "    W, b = params[0], params[1]\n"
        "    with torch.no_grad():\n"
        "        W -= lr * W.grad\n"
        "        b -= lr * b.grad\n"
        "    W.grad.zero_()\n"
        "    b.grad.zero_()\n")),
    Alternative("sgd_step", ".data and grad = None", _sgd(
        "    for p in params:\n"
        "        p.data -= lr * p.grad\n"
        "        p.grad = None\n")),
    Alternative("sgd_step", "add_ with alpha, no_grad as a decorator", (
        "@torch.no_grad()\n"
        "def sgd_step(params, lr):\n"
        "    for p in params:\n"
        "        p.add_(p.grad, alpha=-lr)\n"
        "        p.grad.zero_()\n")),

    # --- train_manual ---------------------------------------------------------------
    Mistake("train_manual", "returns", "wrong_type", name="loss tensors stored", code=_train(
        "    W, b = init_params(X.shape[1], seed=seed)\n"
        "    losses = []\n"
        "    for _ in range(epochs):\n" + _EPOCH +
        "        losses.append(loss)\n"
        "    return W, b, losses\n")),
    Mistake("train_manual", "given_data", "ignores_given_data", name="the notebook's X and y",
            code=_train(
                "    W, b = init_params(X.shape[1], seed=seed)\n"
                "    losses = []\n"
                "    for _ in range(epochs):\n" + _EPOCH +
                "        losses.append(loss.item())\n"
                "    return W, b, losses\n", signature="X_given, y_given, epochs=100, lr=0.1, seed=0")),
    Mistake("train_manual", "uses_four", "not_built_from_four", name="none of the four functions", code=_train(
        "    g = torch.Generator().manual_seed(seed)\n"
        "    a = 1 / math.sqrt(X.shape[1])\n"
        "    W = ((torch.rand(X.shape[1], 1, generator=g) * 2 - 1) * a).requires_grad_()\n"
        "    b = torch.zeros(1, requires_grad=True)\n"
        "    losses = []\n"
        "    for _ in range(epochs):\n"
        "        p = (1 / (1 + torch.exp((-(X @ W + b)).clamp(max=80)))).clamp(1e-7, 1 - 1e-7)\n"
        "        loss = -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()\n"
        "        loss.backward()\n"
        "        with torch.no_grad():\n"
        "            for t in (W, b):\n"
        "                t -= lr * t.grad\n"
        "                t.grad.zero_()\n"
        "        losses.append(loss.item())\n"
        "    return W, b, losses\n")),
    Mistake("train_manual", "uses_four", "not_built_from_four", name="torch.sigmoid instead of forward", code=_train(
        "    W, b = init_params(X.shape[1], seed=seed)\n"
        "    losses = []\n"
        "    for _ in range(epochs):\n"
        "        loss = bce_loss(torch.sigmoid(X @ W + b), y)\n"
        "        loss.backward()\n"
        "        sgd_step([W, b], lr)\n"
        "        losses.append(loss.item())\n"
        "    return W, b, losses\n")),
    Mistake("train_manual", "losses_measured", "losses_not_measured", name="invented losses", code=_train(
        "    W, b = init_params(X.shape[1], seed=seed)\n"
        "    for _ in range(epochs):\n"
        "        bce_loss(forward(X, W, b), y).backward()\n"
        "        sgd_step([W, b], lr)\n"
        "    return W, b, [1 / (e + 1) for e in range(epochs)]\n")),
    Mistake("train_manual", "losses_measured", "losses_not_measured", name="the loss after the step", code=_train(
        "    W, b = init_params(X.shape[1], seed=seed)\n"
        "    losses = []\n"
        "    for _ in range(epochs):\n" + _EPOCH +
        "        losses.append(bce_loss(forward(X, W, b), y).item())\n"
        "    return W, b, losses\n")),
    Mistake("train_manual", "losses_measured", "losses_not_measured", name="the starting parameters returned",
            code=_train(
                "    W, b = init_params(X.shape[1], seed=seed)\n"
                "    start = W.detach().clone(), b.detach().clone()\n"
                "    losses = []\n"
                "    for _ in range(epochs):\n" + _EPOCH +
                "        losses.append(loss.item())\n"
                "    return start[0], start[1], losses\n")),
    Mistake("train_manual", "one_step", "not_gradient_descent", name="two steps per epoch", code=_train(
        "    W, b = init_params(X.shape[1], seed=seed)\n"
        "    losses = []\n"
        "    for _ in range(epochs):\n" + _EPOCH +
        "        bce_loss(forward(X, W, b), y).backward()\n"
        "        sgd_step([W, b], lr)\n"
        "        losses.append(loss.item())\n"
        "    return W, b, losses\n")),
    Mistake("train_manual", "one_step", "not_gradient_descent", name="a learning rate of its own", hidden_only=True,
            code=_train(
                "    W, b = init_params(X.shape[1], seed=seed)\n"
                "    losses = []\n"
                "    for _ in range(epochs):\n"
                "        loss = bce_loss(forward(X, W, b), y)\n"
                "        loss.backward()\n"
                "        sgd_step([W, b], 0.1)\n"
                "        losses.append(loss.item())\n"
                "    return W, b, losses\n")),
    Mistake("train_manual", "one_step", "grads_accumulate", name="an sgd_step that never clears, blamed",
            cells={"sgd_step": _sgd("    with torch.no_grad():\n"
                                    "        for p in params:\n"
                                    "            p -= lr * p.grad\n")}),
    Mistake("train_manual", "seeded", "seed_ignored", name="the seed not passed on", code=_train(
        "    W, b = init_params(X.shape[1])\n"
        "    losses = []\n"
        "    for _ in range(epochs):\n" + _EPOCH +
        "        losses.append(loss.item())\n"
        "    return W, b, losses\n")),
    Mistake("train_manual", "learns", "loss_not_decreasing", name="a default learning rate of 0.001", code=_train(
        "    W, b = init_params(X.shape[1], seed=seed)\n"
        "    losses = []\n"
        "    for _ in range(epochs):\n" + _EPOCH +
        "        losses.append(loss.item())\n"
        "    return W, b, losses\n", signature="X, y, epochs=100, lr=0.001, seed=0")),
    Alternative("train_manual", "a while loop, a tuple, float()", _train(
        "    W, b = init_params(X.shape[1], seed)\n"
        "    losses = []\n"
        "    while len(losses) < epochs:\n"
        "        loss = bce_loss(forward(X, W, b), y)\n"
        "        losses.append(float(loss))\n"
        "        loss.backward()\n"
        "        sgd_step((W, b), lr)\n"
        "    return W, b, losses\n")),

    # --- challenge: fit_raw_measurements --------------------------------------------
    Mistake("fit_raw_measurements", "predict", "wrong_return", name="the weights, not a function", code=_fit(
        _STANDARDISED + "    return W, b\n")),
    Mistake("fit_raw_measurements", "predict", "not_probabilities", name="scores, not probabilities", code=_fit(
        _STANDARDISED + "    return lambda X_new: ((X_new - mean) / std @ W + b).detach()\n")),
    Mistake("fit_raw_measurements", "per_sample", "batch_dependent", name="the batch's own statistics", code=_fit(
        _STANDARDISED + "    return lambda X_new: forward((X_new - X_new.mean(0)) / X_new.std(0), W, b).detach()\n")),
    Mistake("fit_raw_measurements", "target", "below_target", name="the raw columns as they come", code=_fit(
        "    W, b, _ = train_manual(X, y, epochs=100, lr=0.1)\n"
        "    return lambda X_new: forward(X_new, W, b).detach()\n")),
    Mistake("fit_raw_measurements", "target", "below_target", hidden_only=True,
            name="scales taken from the whole data set at call time", code=_fit(
                "    full, _ = load_breast_cancer_raw()\n"
                "    mean, std = full.mean(0), full.std(0)\n"
                "    W, b, _ = train_manual((X - mean) / std, y, epochs=300, lr=0.5)\n"
                "    return lambda X_new: forward((X_new - mean) / std, W, b).detach()\n")),
    Mistake("fit_raw_measurements", "given_data", "ignores_given_data", hidden_only=True,
            name="the whole data set loaded at cell time, unit scales estimated from it", code=(
                "_raw_X, _raw_y = load_breast_cancer_raw()\n\n\n" + _fit(
                    "    units = X.median(dim=0).values / _raw_X.median(dim=0).values   # whatever units X uses\n"
                    "    every = _raw_X * units\n"
                    "    mean, std = every.mean(dim=0), every.std(dim=0)\n"
                    "    W, b, _ = train_manual((every - mean) / std, _raw_y, epochs=300, lr=0.5)\n"
                    "    return lambda X_new: forward((X_new - mean) / std, W, b).detach()\n"))),
    Alternative("fit_raw_measurements", "each column scaled to [0, 1], trained longer", _fit(
        "    low, high = X.min(dim=0).values, X.max(dim=0).values\n"
        "    W, b, _ = train_manual((X - low) / (high - low), y, epochs=800, lr=1.0)\n"
        "    return lambda X_new: forward((X_new - low) / (high - low), W, b).detach()\n")),
    Alternative("fit_raw_measurements", "median and interquartile range, a named predict", _fit(
        "    centre = X.median(dim=0).values\n"
        "    spread = X.quantile(0.75, dim=0) - X.quantile(0.25, dim=0)\n"
        "    W, b, _ = train_manual((X - centre) / spread, y, epochs=400, lr=0.3)\n"
        "\n"
        "    def predict(X_new):\n"
        "        with torch.no_grad():\n"
        "            return forward((X_new - centre) / spread, W, b)\n"
        "\n"
        "    return predict\n")),
]
