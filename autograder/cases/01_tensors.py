"""Planted mistakes and correct alternatives for 01_tensors (see autograder.cases).

Each mistake breaks one rule of its exercise's contract list and must be caught by that rule's check; each
alternative is correct, written another way, and every check (hidden ones included) must accept it.
"""

from autograder.cases import Alternative, Mistake

# The body of a correct make_linear_data after its generator line, to plant one slip at a time.
_W_COLUMN = "    w = torch.as_tensor(w, dtype=torch.float32).reshape(-1, 1)\n"


def _data(body: str) -> str:
    return "def make_linear_data(n, w, b, noise_std=0.0, seed=0):\n" + body


def _mse(body: str) -> str:
    return "def mse(pred, target):\n" + body


_SHAPE_GUARD = ('    if pred.shape != target.shape:\n'
                '        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")\n')


def _analytic(body: str) -> str:
    return "def analytic_gradients(X, y, w, b):\n" + body


def _autograd(body: str) -> str:
    return "def autograd_gradients(X, y, w, b):\n" + body


# The notebook's own problem, regenerated at cell time (as a learner who copies the demo cell might).
_NOTEBOOK_PROBLEM = '''
_gen = torch.Generator().manual_seed(0)
_glitched = torch.randperm(400, generator=_gen)[:40]
_X = torch.randn(400, 3, generator=_gen)
_y = _X @ torch.tensor([[2.0], [-3.0], [0.5]]) + 1.0 + 0.5 * torch.randn(400, 1, generator=_gen)
_size = (5 + 35 * torch.rand(40, 1, generator=_gen)) * (13.25 + 0.25) ** 0.5
_y[_glitched] = 1.0 + torch.where(torch.rand(40, 1, generator=_gen) < 0.5, -1.0, 1.0) * _size
'''

_LSTSQ = '''    with_ones = torch.cat([X, torch.ones(len(X), 1)], dim=1)
    coef = torch.linalg.lstsq(with_ones, y).solution
'''

CASES = [
    # --- make_linear_data ---------------------------------------------------------
    Mistake("make_linear_data", "shapes", "broadcast_shape", name="1-D w drops the column", code=_data(
        "    gen = torch.Generator().manual_seed(seed)\n"
        "    w = torch.as_tensor(w, dtype=torch.float32)\n"
        "    X = torch.randn(n, len(w), generator=gen)\n"
        "    return X, X @ w + b + noise_std * torch.randn(n, generator=gen)\n")),
    Mistake("make_linear_data", "shapes", "broadcast_shape", name="1-D noise broadcasts to (n, n)", code=_data(
        "    gen = torch.Generator().manual_seed(seed)\n" + _W_COLUMN +
        "    X = torch.randn(n, len(w), generator=gen)\n"
        "    return X, X @ w + b + noise_std * torch.randn(n, generator=gen)\n")),
    Mistake("make_linear_data", "shapes", "wrong_dtype", name="float64 data", code=_data(
        "    gen = torch.Generator().manual_seed(seed)\n"
        "    w = torch.as_tensor(w, dtype=torch.float64).reshape(-1, 1)\n"
        "    X = torch.randn(n, len(w), generator=gen, dtype=torch.float64)\n"
        "    return X, X @ w + b + noise_std * torch.randn(n, 1, generator=gen, dtype=torch.float64)\n")),
    Mistake("make_linear_data", "any_w", "wrong_dtype", name="integer weights kept as int64", code=_data(
        "    gen = torch.Generator().manual_seed(seed)\n"
        "    w = torch.tensor(w).reshape(-1, 1)\n"
        "    X = torch.randn(n, len(w), generator=gen)\n"
        "    return X, X @ w + b + noise_std * torch.randn(n, 1, generator=gen)\n")),
    Mistake("make_linear_data", "targets", "missing_bias", name="no bias", code=_data(
        "    gen = torch.Generator().manual_seed(seed)\n" + _W_COLUMN +
        "    X = torch.randn(n, len(w), generator=gen)\n"
        "    return X, X @ w + noise_std * torch.randn(n, 1, generator=gen)\n")),
    Mistake("make_linear_data", "normal_X", "not_normal", name="uniform X", code=_data(
        "    gen = torch.Generator().manual_seed(seed)\n" + _W_COLUMN +
        "    X = torch.rand(n, len(w), generator=gen)\n"
        "    return X, X @ w + b + noise_std * torch.randn(n, 1, generator=gen)\n")),
    Mistake("make_linear_data", "normal_X", "not_normal", name="uniform X with mean 0 and spread 1", code=_data(
        "    gen = torch.Generator().manual_seed(seed)\n" + _W_COLUMN +
        "    X = (torch.rand(n, len(w), generator=gen) * 2 - 1) * 3 ** 0.5\n"
        "    return X, X @ w + b + noise_std * torch.randn(n, 1, generator=gen)\n")),
    Mistake("make_linear_data", "noise", "wrong_noise", name="noise_std used as a variance", code=_data(
        "    gen = torch.Generator().manual_seed(seed)\n" + _W_COLUMN +
        "    X = torch.randn(n, len(w), generator=gen)\n"
        "    return X, X @ w + b + noise_std ** 2 * torch.randn(n, 1, generator=gen)\n")),
    Mistake("make_linear_data", "noise", "noise_ignored", name="no noise", code=_data(
        "    gen = torch.Generator().manual_seed(seed)\n" + _W_COLUMN +
        "    X = torch.randn(n, len(w), generator=gen)\n"
        "    return X, X @ w + b\n")),
    Mistake("make_linear_data", "noise", "wrong_noise", name="uniform noise", code=_data(
        "    gen = torch.Generator().manual_seed(seed)\n" + _W_COLUMN +
        "    X = torch.randn(n, len(w), generator=gen)\n"
        "    return X, X @ w + b + noise_std * (torch.rand(n, 1, generator=gen) * 2 - 1) * 3 ** 0.5\n")),
    Mistake("make_linear_data", "noise", "noise_reuses_X", name="two generators with the same seed", code=_data(
        _W_COLUMN +
        "    X = torch.randn(n, len(w), generator=torch.Generator().manual_seed(seed))\n"
        "    noise = torch.randn(n, 1, generator=torch.Generator().manual_seed(seed))\n"
        "    return X, X @ w + b + noise_std * noise\n")),
    Mistake("make_linear_data", "seeded", "seed_ignored", name="a generator never seeded", code=_data(
        "    gen = torch.Generator()\n" + _W_COLUMN +
        "    X = torch.randn(n, len(w), generator=gen)\n"
        "    return X, X @ w + b + noise_std * torch.randn(n, 1, generator=gen)\n")),
    Mistake("make_linear_data", "seeded", "not_deterministic", name="a generator seeded from the clock", code=_data(
        _W_COLUMN +
        "    X = torch.randn(n, len(w), generator=torch.Generator().manual_seed(torch.seed() % 1000))\n"
        "    return X, X @ w + b + noise_std * torch.randn(n, 1)\n")),
    Mistake("make_linear_data", "global_rng", "global_rng", name="the global generator reseeded", code=_data(
        "    torch.manual_seed(seed)\n" + _W_COLUMN +
        "    X = torch.randn(n, len(w))\n"
        "    return X, X @ w + b + noise_std * torch.randn(n, 1)\n")),
    Mistake("make_linear_data", "draw_order", "wrong_draw_order", name="the noise drawn before X", code=_data(
        "    gen = torch.Generator().manual_seed(seed)\n" + _W_COLUMN +
        "    noise = noise_std * torch.randn(n, 1, generator=gen)\n"
        "    X = torch.randn(n, len(w), generator=gen)\n"
        "    return X, X @ w + b + noise\n")),
    Mistake("make_linear_data", "draw_order", "wrong_draw_order", name="X drawn as (d, n) and transposed", code=_data(
        "    gen = torch.Generator().manual_seed(seed)\n" + _W_COLUMN +
        "    X = torch.randn(len(w), n, generator=gen).T\n"
        "    return X, X @ w + b + noise_std * torch.randn(n, 1, generator=gen)\n")),
    Alternative("make_linear_data", "matmul and torch.normal", _data(
        "    gen = torch.Generator()\n"
        "    gen.manual_seed(seed)\n"
        "    w = torch.tensor([float(v) for v in w])[:, None]\n"
        "    X = torch.normal(0.0, 1.0, size=(n, len(w)), generator=gen)\n"
        "    return X, torch.matmul(X, w) + b + torch.normal(0.0, 1.0, size=(n, 1), generator=gen) * noise_std\n")),
    Alternative("make_linear_data", "normal_ in place, w as a column by unsqueeze", _data(
        "    gen = torch.Generator().manual_seed(seed)\n"
        "    w = torch.as_tensor(w).float().unsqueeze(1)\n"
        "    X = torch.empty(n, w.shape[0]).normal_(generator=gen)\n"
        "    noise = torch.empty(n, 1).normal_(generator=gen)\n"
        "    return X, X @ w + b + noise * noise_std\n")),

    # --- mse ----------------------------------------------------------------------
    Mistake("mse", "shape_mismatch", "broadcast_shape", name="no shape check", code=_mse(
        "    return ((pred - target) ** 2).mean()\n")),
    Mistake("mse", "shape_mismatch", "wrong_exception", name="an assert instead of ValueError", code=_mse(
        '    assert pred.shape == target.shape, "shapes differ"\n'
        "    return ((pred - target) ** 2).mean()\n")),
    Mistake("mse", "names_shapes", "shapes_unnamed", name="an error that names no shape", code=_mse(
        "    if pred.shape != target.shape:\n"
        '        raise ValueError("pred and target must have the same shape")\n'
        "    return ((pred - target) ** 2).mean()\n")),
    Mistake("mse", "mean", "sum_not_mean", name="sum", code=_mse(_SHAPE_GUARD + "    return ((pred - target) ** 2).sum()\n")),
    Mistake("mse", "mean", "not_reduced", name="one loss per sample", code=_mse(
        _SHAPE_GUARD + "    return (pred - target) ** 2\n")),
    Mistake("mse", "mean", "rmse", name="root of the mean", code=_mse(
        _SHAPE_GUARD + "    return ((pred - target) ** 2).mean().sqrt()\n")),
    Mistake("mse", "mean", "not_squared", name="mean absolute error", code=_mse(
        _SHAPE_GUARD + "    return (pred - target).abs().mean()\n")),
    Mistake("mse", "any_shape", "rejects_matching_shapes", name="columns only", code=_mse(
        "    if pred.dim() != 2 or pred.shape != target.shape:\n"
        '        raise ValueError(f"expected two columns of the same shape, got {tuple(pred.shape)} and '
        '{tuple(target.shape)}")\n'
        "    return ((pred - target) ** 2).mean()\n")),
    Mistake("mse", "differentiable", "detached", name="a new tensor from .item()", code=_mse(
        _SHAPE_GUARD + "    return torch.tensor(((pred - target) ** 2).mean().item())\n")),
    Alternative("mse", "functional, shapes in torch.Size form", _mse(
        "    if pred.shape != target.shape:\n"
        '        raise ValueError(f"{pred.shape} vs {target.shape}")\n'
        "    return torch.nn.functional.mse_loss(pred, target)\n")),
    Alternative("mse", "pow and numel, shapes as lists", _mse(
        "    if tuple(pred.shape) != tuple(target.shape):\n"
        '        raise ValueError(f"shape mismatch: {list(pred.shape)} against {list(target.shape)}")\n'
        "    return (pred - target).pow(2).sum() / pred.numel()\n")),

    # --- autograd_gradients -------------------------------------------------------
    Mistake("autograd_gradients", "shapes", "wrong_shape", name="dw flattened", code=_autograd(
        "    w_, b_ = w.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()\n"
        "    mse(X @ w_ + b_, y).backward()\n"
        "    return w_.grad.flatten(), b_.grad\n")),
    Mistake("autograd_gradients", "gradient", "sum_not_mean", name="a summed loss", code=_autograd(
        "    w_, b_ = w.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()\n"
        "    ((X @ w_ + b_ - y) ** 2).sum().backward()\n"
        "    return w_.grad, b_.grad\n")),
    Mistake("autograd_gradients", "gradient", "mse_broken", name="a summing mse, blamed",
            cells={"mse": _mse(_SHAPE_GUARD + "    return ((pred - target) ** 2).sum()\n")}),
    Mistake("autograd_gradients", "plain_untouched", "requires_grad_flipped", name="on the caller's tensors",
            code=_autograd(
                "    w.requires_grad_(True)\n"
                "    b.requires_grad_(True)\n"
                "    mse(X @ w + b, y).backward()\n"
                "    return w.grad, b.grad\n")),
    Mistake("autograd_gradients", "training_untouched", "grads_accumulate",
            name="flags restored, but the old .grad added in", code=_autograd(
                "    was = (w.requires_grad, b.requires_grad)\n"
                "    w.requires_grad_(True)\n"
                "    b.requires_grad_(True)\n"
                "    mse(X @ w + b, y).backward()\n"
                "    dw, db = w.grad.clone(), b.grad.clone()\n"
                "    if not was[0]:\n"
                "        w.requires_grad_(False)\n"
                "        w.grad = None\n"
                "    if not was[1]:\n"
                "        b.requires_grad_(False)\n"
                "        b.grad = None\n"
                "    return dw, db\n")),
    Mistake("autograd_gradients", "training_untouched", "not_leaf", name="clone without detach", code=_autograd(
        "    w_, b_ = w.clone().requires_grad_(), b.clone().requires_grad_()\n"
        "    mse(X @ w_ + b_, y).backward()\n"
        "    return w_.grad, b_.grad\n")),
    Alternative("autograd_gradients", "torch.autograd.grad on detached copies", _autograd(
        "    w_, b_ = w.detach().requires_grad_(True), b.detach().requires_grad_(True)\n"
        "    loss = ((torch.matmul(X, w_) + b_ - y) ** 2).mean()\n"
        "    dw, db = torch.autograd.grad(loss, (w_, b_))\n"
        "    return dw, db\n")),

    # --- analytic_gradients -------------------------------------------------------
    Mistake("analytic_gradients", "shapes", "wrong_shape", name="0-dim db", code=_analytic(
        "    r = X @ w + b - y\n"
        "    return 2 / len(X) * X.T @ r, 2 / len(X) * r.sum()\n")),
    Mistake("analytic_gradients", "formula", "missing_factor_two", name="without the 2", code=_analytic(
        "    r = X @ w + b - y\n"
        "    return X.T @ r / len(X), r.sum(dim=0) / len(X)\n")),
    Mistake("analytic_gradients", "formula", "sum_not_mean", name="without 1/N", code=_analytic(
        "    r = X @ w + b - y\n"
        "    return 2 * X.T @ r, 2 * r.sum(dim=0)\n")),
    Mistake("analytic_gradients", "formula", "wrong_sign", name="residuals the other way round", code=_analytic(
        "    r = y - X @ w - b\n"
        "    return 2 / len(X) * X.T @ r, 2 / len(X) * r.sum(dim=0)\n")),
    Mistake("analytic_gradients", "no_autograd", "used_autograd", name="autograd after all", code=_analytic(
        "    w_, b_ = w.clone().requires_grad_(), b.clone().requires_grad_()\n"
        "    ((X @ w_ + b_ - y) ** 2).mean().backward()\n"
        "    return w_.grad, b_.grad\n")),
    Mistake("analytic_gradients", "no_autograd", "used_autograd", name="autograd, the stop swallowed", code=_analytic(
        "    try:\n"
        "        w_, b_ = w.clone().requires_grad_(), b.clone().requires_grad_()\n"
        "        dw, db = torch.autograd.grad(((X @ w_ + b_ - y) ** 2).mean(), (w_, b_))\n"
        "        return dw, db\n"
        "    except Exception:\n"
        "        r = X @ w + b - y\n"
        "        return X.T @ r * 2 / len(X), r.sum(dim=0) * 2 / len(X)\n")),
    Alternative("analytic_gradients", "matmul and a mean", _analytic(
        "    r = torch.matmul(X, w) + b - y\n"
        "    return torch.matmul(X.T, r) * (2 / len(X)), (2 * r.mean()).reshape(1)\n")),

    # --- challenge: fit_linear ----------------------------------------------------
    Mistake("fit_linear", "returns", "wrong_shape", name="a flat w", code=(
        "def fit_linear(X, y):\n" + _LSTSQ + "    return coef[:-1, 0], coef[-1:, 0]\n")),
    Mistake("fit_linear", "returns", "wrong_shape", name="a 0-dim b", code=(
        "def fit_linear(X, y):\n" + _LSTSQ + "    return coef[:-1], coef[-1, 0]\n")),
    Mistake("fit_linear", "returns", "not_finite", name="descent with too large a step", code=(
        "def fit_linear(X, y):\n"
        "    w, b = torch.zeros(X.shape[1], 1), torch.zeros(1)\n"
        "    for _ in range(200):\n"
        "        dw, db = analytic_gradients(X, y, w, b)\n"
        "        w, b = w - 5.0 * dw, b - 5.0 * db\n"
        "    return w, b\n")),
    Mistake("fit_linear", "target", "below_target", name="least squares", code=(
        "def fit_linear(X, y):\n" + _LSTSQ + "    return coef[:-1], coef[-1:, 0]\n")),
    Mistake("fit_linear", "target", "below_target", name="gradient descent on the squared error", code=(
        "def fit_linear(X, y):\n"
        "    w, b = torch.zeros(X.shape[1], 1), torch.zeros(1)\n"
        "    for _ in range(300):\n"
        "        dw, db = analytic_gradients(X, y, w, b)\n"
        "        w, b = w - 0.1 * dw, b - 0.1 * db\n"
        "    return w, b\n")),
    Mistake("fit_linear", "given_data", "ignores_given_data", hidden_only=True,
            name="fits the notebook's problem, whatever it is given", code=_NOTEBOOK_PROBLEM + (
                "\n\ndef fit_linear(X, y):\n"
                "    X, y = _X, _y\n"
                "    A = torch.cat([X, torch.ones(len(X), 1)], dim=1)\n"
                "    keep = torch.ones(len(X), dtype=torch.bool)\n"
                "    for _ in range(5):\n"
                "        coef = torch.linalg.lstsq(A[keep], y[keep]).solution\n"
                "        r = (A @ coef - y).abs().flatten()\n"
                "        keep = r <= 3 * 1.4826 * r[keep].median()\n"
                "    return coef[:-1], coef[-1:, 0]\n")),
    Alternative("fit_linear", "trimmed least squares, refitted until stable", (
        "def fit_linear(X, y):\n"
        "    A = torch.cat([X, torch.ones(len(X), 1)], dim=1)\n"
        "    keep = torch.ones(len(X), dtype=torch.bool)\n"
        "    for _ in range(5):\n"
        "        coef = torch.linalg.lstsq(A[keep], y[keep]).solution\n"
        "        r = (A @ coef - y).abs().flatten()\n"
        "        keep = r <= 3 * 1.4826 * r[keep].median()\n"
        "    return coef[:-1], coef[-1:, 0]\n")),
    Alternative("fit_linear", "least absolute error alone", (
        "def fit_linear(X, y):\n"
        "    w, b = torch.zeros(X.shape[1], 1), torch.zeros(1)\n"
        "    for t in range(1500):\n"
        "        s = torch.sign(X @ w + b - y)\n"
        "        step = 1.0 / (1 + t / 10)\n"
        "        w, b = w - step * X.T @ s / len(X), b - step * s.mean(0)\n"
        "    return w, b\n")),
    Alternative("fit_linear", "Huber loss through autograd, scaled by the residuals", (
        "def fit_linear(X, y):\n"
        "    w, b = torch.zeros(X.shape[1], 1), y.median().reshape(1)\n"
        "    for t in range(300):\n"
        "        s = torch.sign(X @ w + b - y)\n"
        "        w, b = w - X.T @ s / len(X) / (1 + t / 10), b - s.mean(0) / (1 + t / 10)\n"
        "    delta = 1.345 * 1.4826 * (X @ w + b - y).abs().median()\n"
        "    w, b = w.clone().requires_grad_(), b.clone().requires_grad_()\n"
        "    for _ in range(400):\n"
        "        r = X @ w + b - y\n"
        "        loss = torch.where(r.abs() < delta, 0.5 * r ** 2, delta * (r.abs() - 0.5 * delta)).mean()\n"
        "        dw, db = torch.autograd.grad(loss, (w, b))\n"
        "        w, b = (w - 0.5 * dw).detach().requires_grad_(), (b - 0.5 * db).detach().requires_grad_()\n"
        "    return w.detach(), b.detach()\n")),
    Alternative("fit_linear", "drop the targets far from the median, then least squares", (
        "def fit_linear(X, y):\n"
        "    far = (y - y.median()).abs().flatten()\n"
        "    keep = far <= 3 * 1.4826 * far.median()\n"
        "    A = torch.cat([X[keep], torch.ones(int(keep.sum()), 1)], dim=1)\n"
        "    coef = torch.linalg.lstsq(A, y[keep]).solution\n"
        "    return coef[:-1], coef[-1:, 0]\n")),
]
