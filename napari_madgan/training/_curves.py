"""Live loss curves of a training run (matplotlib canvas)."""

from __future__ import annotations

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

from napari_madgan.training._metrics import CURVES, MetricsTail

LABELS = {
    "loss_critic": "critic (WGAN-GP)",
    "loss_gen_adv": "generator adversarial",
    "loss_l1": "ℓ1 reconstruction",
}


class LossCurves(FigureCanvasQTAgg):
    """Critic and generator adversarial losses on the left axis, ℓ1 on its own axis."""

    def __init__(self):
        self.figure = Figure(figsize=(4, 2.4), layout="constrained")
        super().__init__(self.figure)
        self.setMinimumHeight(170)
        self.ax_adv = self.figure.add_subplot(211)
        self.ax_l1 = self.figure.add_subplot(212, sharex=self.ax_adv)
        self.lines = {}
        for key, ax, color in (
            ("loss_critic", self.ax_adv, "tab:red"),
            ("loss_gen_adv", self.ax_adv, "tab:blue"),
            ("loss_l1", self.ax_l1, "tab:green"),
        ):
            (self.lines[key],) = ax.plot([], [], color=color, lw=1.1, label=LABELS[key])
        self.ax_adv.legend(fontsize=7, loc="upper right")
        self.ax_l1.legend(fontsize=7, loc="upper right")
        self.ax_l1.set_xlabel("step")
        for ax in (self.ax_adv, self.ax_l1):
            ax.tick_params(labelsize=7)

    def update_from(self, metrics: MetricsTail) -> None:
        for key in CURVES:
            steps, values = metrics.series(key)
            self.lines[key].set_data(steps, values)
        for ax in (self.ax_adv, self.ax_l1):
            ax.relim()
            ax.autoscale_view()
        self.draw_idle()
