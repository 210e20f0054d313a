"""Optimizers written as any torch user writes them, for the tests of adamgen's door."""

import torch


class Signum(torch.optim.Optimizer):
    """SignSGD with momentum (Bernstein et al. 2018): b ← μ b + (1 − μ) g; W ← W − η sign(b),
    with decoupled weight decay W ← (1 − ηλ) W."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.9,
                 weight_decay: float = 0.0):
        if lr <= 0:
            raise ValueError(f"invalid lr {lr}")
        super().__init__(params, {"lr": lr, "momentum": momentum,
                                  "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "momentum" not in state:
                    state["momentum"] = torch.zeros_like(p)
                b = state["momentum"]
                b.mul_(group["momentum"]).add_(p.grad, alpha=1 - group["momentum"])
                p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(torch.sign(b), alpha=-group["lr"])
        return loss


class _Counting(torch.optim.Optimizer):
    """Plain SGD that counts its steps; a subclass breaks one of them (`fault`)."""

    def __init__(self, params, lr: float = 1e-3):
        super().__init__(params, {"lr": lr})
        self.count = 0

    def fault(self, p: torch.Tensor) -> None:
        """After the update of `p` at step `self.count`."""

    @torch.no_grad()
    def step(self, closure=None):
        self.count += 1
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(p.grad, alpha=-group["lr"])
                self.fault(p)


class Exploding(_Counting):
    """Raises at its third step (a bug in someone's optimizer)."""

    def fault(self, p):
        if self.count == 3:
            raise RuntimeError("the moment estimate went negative")


class Poisoning(_Counting):
    """Writes NaN into the weights at its fifth step."""

    def fault(self, p):
        if self.count == 5:
            p.fill_(float("nan"))

class Averaging(torch.optim.Optimizer):
    """Gradient descent whose evaluation weights are the running average of its iterates, with
    train()/eval() modes as schedule-free optimizers have: eval() puts the average in place."""

    def __init__(self, params, lr: float = 1e-2):
        super().__init__(params, {"lr": lr})
        self.evaluating = False

    def train(self):
        if self.evaluating:
            self._swap()
        self.evaluating = False

    def eval(self):
        if not self.evaluating:
            self._swap()
        self.evaluating = True

    @torch.no_grad()
    def _swap(self):
        for group in self.param_groups:
            for p in group["params"]:
                average = self.state[p].setdefault("average", p.clone())
                tmp = p.clone()
                p.copy_(average)
                average.copy_(tmp)

    @torch.no_grad()
    def step(self, closure=None):
        if self.evaluating:
            raise RuntimeError("step in eval mode")
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(p.grad, alpha=-group["lr"])
                state = self.state[p]
                state["count"] = state.get("count", 0) + 1
                average = state.setdefault("average", p.clone())
                average.add_(p - average, alpha=1 / state["count"])
