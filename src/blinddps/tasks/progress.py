"""One progress count over the several proximal-sampler runs of a blind restoration (the
candidates' short runs and the kept kernel's full ones), reported through the callback."""
from __future__ import annotations

from dataclasses import replace

from ..solvers import StepInfo
from ..solvers.proximal import ProximalConfig, timesteps


class RunProgress:
    """One progress count over the candidates' restorations (`trial`'s steps each) and the
    kept kernel's full restorations after them (`finals` of them counted from the start with
    `final`'s settings, else None; one not counted there is announced by `final` as it
    starts): the callback's steps numbered on from the runs before, out of the runs announced
    so far (a fallback adds its runs when it starts)."""

    def __init__(self, callback, trial: ProximalConfig, final: ProximalConfig | None, finals: int = 1):
        self.callback = callback
        self.each = len(timesteps(trial.steps, trial.t_start))
        self.final_steps = 0 if final is None else len(timesteps(final.steps, final.t_start))
        self.finals = 0 if final is None else finals
        self.runs = self.started = self.finals_started = 0

    def add(self, runs: int) -> None:
        self.runs += runs

    def _shifted(self, done: int, own: int):
        total = self.runs * self.each + self.finals * self.final_steps
        if self.callback is None or (done == 0 and total == own):
            return self.callback  # a single run: its own numbering

        def shifted(info: StepInfo) -> None:
            self.callback(replace(info, step=done + info.step, num_steps=total))
        return shifted

    def next(self):
        """The callback of the next candidate's restoration."""
        self.started += 1
        return self._shifted((self.started - 1) * self.each, self.each)

    def final(self, settings: ProximalConfig, announced: bool = True):
        """The callback of the kept kernel's next full restoration with `settings` (after every
        candidate's; `announced` False: the constructor did not count it, so it is now)."""
        self.final_steps = len(timesteps(settings.steps, settings.t_start))
        self.finals += not announced
        self.finals_started += 1
        return self._shifted(self.runs * self.each + (self.finals_started - 1) * self.final_steps, self.final_steps)


class ViewThenPhoto:
    """One progress count over a blind restoration found on a reduced view, the restorations
    that carry its kernel up (`between` steps in all, each costing about a view's step) and
    the photo then restored at its own size. A step of the photo counts `weight` steps of the
    view (the photo's pixels over the view's: what one step costs, tiles x steps), and the
    later runs' steps are in the total from the view's first step on, so a time estimate from
    the count covers the whole run. `view`, `middle` and `photo` are the runs' callbacks."""

    def __init__(self, callback, weight: int, photo_steps: int, between: int = 0):
        self.callback = callback
        self.weight, self.photo_steps, self.between = max(1, int(weight)), photo_steps, between
        self.view_total = self.middle_done = 0

    def _total(self) -> int:
        return self.view_total + self.between + self.weight * self.photo_steps

    def view(self, info: StepInfo) -> None:
        self.view_total = info.num_steps
        self.callback(replace(info, num_steps=self._total()))

    def middle(self, info: StepInfo) -> None:
        self.middle_done += 1
        self.callback(replace(info, step=self.view_total + self.middle_done - 1, num_steps=self._total()))

    def photo(self, info: StepInfo) -> None:
        self.photo_steps = info.num_steps
        done = self.view_total + self.between
        self.callback(replace(info, step=done + self.weight * (info.step + 1) - 1, num_steps=self._total()))
