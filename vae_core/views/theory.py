"""The theory on the Learn page, as data: each formula with its anchor, the Train page controls it explains and a
few sentences. The page renders it; the Train page's help texts link back to it through `help_with_formulas`.

Every formula says what the engine computes (vae_core/maths/objectives.py, score.py), symbol for symbol: t is the
training step counted from 0 and S = ⌈N / B⌉ the steps per epoch (N training samples, batch size B).
tests/unit/test_theory.py checks each formula against the code.
"""

from __future__ import annotations

from dataclasses import dataclass

from vae_core.maths.score import IWAE_K

LEARN_PATH = "learn"  # the Learn page's URL path: st.navigation names it after pages/learn.py

# The label the Train page shows for each setting a formula explains (the page tests check they match).
LABELS = {
    "mode": "Kind",
    "latent_dim": "Latent size",
    "recon_loss": "Reconstruction loss",
    "mse_sigma": "Decoder σ (MSE)",
    "mixed_weight": "Share of BCE",
    "beta": "β (weight of the KL term)",
    "beta_schedule": "β schedule",
    "beta_warmup_epochs": "Warm-up epochs",
    "beta_cycles": "Cycles",
    "beta_cycle_ratio": "Share of each cycle spent rising",
    "capacity": "Capacity objective γ·|KL − C|",
    "capacity_gamma": "γ",
    "capacity_max": "C at the end of the ramp (nats)",
    "capacity_ramp_epochs": "Ramp epochs",
    "free_bits": "Free bits (nats per dimension)",
}


@dataclass(frozen=True)
class Formula:
    anchor: str  # the heading's id on the Learn page: links end in #anchor
    title: str
    part: str  # the Learn page's section
    controls: tuple[str, ...]  # TrainConfig fields it explains, shown by their LABELS
    latex: tuple[str, ...]
    text: str  # markdown, after the formulas


DERIVATION, RECONSTRUCTION, KL_TERM, NO_KL, SCORE = (
    "Deriving the objective", "The reconstruction term: a likelihood", "Weighing the KL term", "Without a KL term",
    "Scoring a model")

FORMULAS: tuple[Formula, ...] = (
    Formula(
        anchor="elbo", title="The ELBO, a lower bound on log p(x)", part=DERIVATION, controls=("mode",),
        latex=(
            (r"\begin{aligned}\log p_\theta(x)"
             r"&= \mathbb E_{q_\phi(z\mid x)}\Big[\log \frac{p_\theta(x, z)}{p_\theta(z\mid x)}\Big]"
             r" = \mathbb E_{q_\phi(z\mid x)}\Big[\log \frac{p_\theta(x, z)}{q_\phi(z\mid x)}\Big]"
             r" + \mathbb E_{q_\phi(z\mid x)}\Big[\log \frac{q_\phi(z\mid x)}{p_\theta(z\mid x)}\Big]\\"
             r"&= \underbrace{\mathbb E_{q_\phi(z\mid x)}\big[\log p_\theta(x\mid z)\big]"
             r" - \mathrm{KL}\big(q_\phi(z\mid x)\,\|\,p(z)\big)}_{\text{ELBO}}"
             r" \;+\; \underbrace{\mathrm{KL}\big(q_\phi(z\mid x)\,\|\,p_\theta(z\mid x)\big)}_{\text{gap}\;\ge\;0}"
             r"\end{aligned}"),
        ),
        text=(
            "The first line holds for any $z$, since $p_\\theta(x) = p_\\theta(x, z) / p_\\theta(z\\mid x)$; "
            "averaging over the encoder's $q_\\phi(z\\mid x)$ and splitting the fraction gives the second. The gap "
            "is the KL divergence from the encoder's distribution to the true posterior $p_\\theta(z\\mid x)$: "
            "never negative, so the ELBO is a **lower bound** on $\\log p_\\theta(x)$, and equal to it only when "
            "the encoder finds the true posterior. Nobody can compute the gap (it needs $p_\\theta(x)$ itself), "
            "but the ELBO is computable: a VAE maximises it, which raises $\\log p_\\theta(x)$ or narrows the "
            "gap.\n\n"
            "Training minimises **−ELBO = reconstruction + KL**, in nats per sample: the reconstruction "
            "$-\\log p_\\theta(x\\mid z)$ with one $z$ drawn from $q_\\phi(z\\mid x)$, and the KL in closed form "
            "(below). The Train page's loss chart always draws it, whatever the objective: it is the one number "
            "that compares runs."
        ),
    ),
    Formula(
        anchor="kl-and-sampling", title="The KL term in closed form, and the reparameterisation trick",
        part=DERIVATION, controls=("latent_dim",),
        latex=(
            (r"\mathrm{KL}\big(q_\phi(z\mid x)\,\|\,\mathcal N(0, I)\big) = \sum_{j=1}^{d} \mathrm{KL}_j,"
             r" \qquad \mathrm{KL}_j = \tfrac12\big(\mu_j^2 + \sigma_j^2 - 1 - \log \sigma_j^2\big)"),
            r"z = \mu(x) + \sigma(x) \odot \varepsilon, \qquad \varepsilon \sim \mathcal N(0, I)",
        ),
        text=(
            "The encoder gives each input a mean $\\mu(x)$ and a variance $\\sigma^2(x)$ in each of the $d$ "
            "latent dimensions (the latent size). A dimension with $\\mathrm{KL}_j \\approx 0$ carries no "
            "information about the input ($\\mu_j \\approx 0$, $\\sigma_j \\approx 1$ for every input). One is "
            "*informative* when it carries over 0.1 nats and its $\\mu_j$ varies across inputs; when none is, or "
            "the whole code carries less than one bit (ln 2 ≈ 0.69 nats), the model has suffered **posterior "
            "collapse**, and the Train page warns of it.\n\n"
            "Drawing $z$ as a deterministic function of $\\mu$, $\\sigma$ and outside noise $\\varepsilon$ lets "
            "the reconstruction's gradient flow back into the encoder, so both networks train by gradient descent."
        ),
    ),
    Formula(
        anchor="bce", title="BCE: a Bernoulli decoder", part=RECONSTRUCTION, controls=("recon_loss",),
        latex=(
            (r"-\log p_\theta(x\mid z) = -\sum_{i=1}^{D}\big[x_i \log p_i + (1 - x_i)\log(1 - p_i)\big],"
             r"\qquad p_i = \operatorname{sigmoid}\big(\ell_i(z)\big)"),
        ),
        text=(
            "The decoder's $D$ outputs $\\ell_i$ (one per pixel) are logits: each pixel is a coin that comes up "
            "white with probability $p_i$, and the loss is the binary cross-entropy (BCE). It suits images in "
            "[0, 1]. A grey pixel ($0 < x_i < 1$) is a soft target: its loss is smallest at $p_i = x_i$ but never "
            "0 there, so the reconstruction of grey images never reaches 0 nats."
        ),
    ),
    Formula(
        anchor="mse", title="MSE: a Gaussian decoder with σ", part=RECONSTRUCTION, controls=("mse_sigma",),
        latex=(
            (r"-\log \mathcal N\big(x;\, m(z),\, \sigma^2 I\big) = \frac{1}{2\sigma^2}\sum_{i=1}^{D}"
             r"\big(x_i - m_i(z)\big)^2 \;+\; D\big(\log\sigma + \tfrac12\log 2\pi\big)"),
        ),
        text=(
            "The decoder gives the mean $m(z)$ of a Gaussian (for images, the sigmoid of its outputs, as for BCE; "
            "for 2-D points, its outputs themselves) whose standard deviation σ is the setting **Decoder σ "
            "(MSE)**, the same for every pixel. σ does two things. The factor $1/(2\\sigma^2)$ weighs the squared "
            "error against the KL term: halving σ quadruples the reconstruction's weight, which has the same "
            "optimum as dividing β by 4 (in general, σ and β have the optimum of σ′ and β σ²/σ′²). The constant "
            "$D(\\log\\sigma + \\frac12\\log 2\\pi)$ changes no gradient, but it shifts the loss: with small σ it "
            "is negative (a density may exceed 1), so the reconstruction and the −ELBO can go below 0 nats, and "
            "−ELBOs are comparable only between runs with the same σ."
        ),
    ),
    Formula(
        anchor="mixed", title="The mixed loss", part=RECONSTRUCTION, controls=("mixed_weight",),
        latex=(
            (r"\text{reconstruction} = w\cdot\text{BCE} + (1 - w)\cdot\Big[\frac{1}{2\sigma^2}\sum_{i=1}^{D}"
             r"\big(x_i - m_i(z)\big)^2 + D\big(\log\sigma + \tfrac12\log 2\pi\big)\Big]"),
        ),
        text=(
            "$w$ is the **Share of BCE**; both terms read the same decoder output (its logits for BCE, their "
            "sigmoid as the Gaussian's mean). It is the negative log of a product of the two likelihoods raised to "
            "the powers $w$ and $1 - w$, which is not a normalised density: its −ELBO is not a bound on any "
            "$\\log p(x)$, so compare it only between runs with the same loss."
        ),
    ),
    Formula(
        anchor="beta-vae", title="β-VAE: weighing the KL term", part=KL_TERM, controls=("beta",),
        latex=(r"\mathcal L_\beta = \text{reconstruction} + \beta\cdot\mathrm{KL}",),
        text=(
            "At β = 1 this is the −ELBO. β > 1 pushes the codes towards the prior (a smoother, more regular "
            "latent space, blurrier reconstructions); β < 1 favours reconstruction. The β schedules below shape β "
            "over the run; a live change of β on the Train page replaces the β they start from."
        ),
    ),
    Formula(
        anchor="kl-warm-up", title="KL warm-up", part=KL_TERM, controls=("beta_schedule", "beta_warmup_epochs"),
        latex=(
            (r"\beta_t = \beta\cdot\min\Big(1,\; \frac{t}{E_w\, S}\Big)"
             r"\qquad(\beta_t = \beta\ \text{when}\ E_w = 0)"),
        ),
        text=(
            "Here and below, $t$ is the training step, counted from 0, and $S = \\lceil N / B\\rceil$ the steps "
            "per epoch ($N$ training samples, batch size $B$). With the **warmup** schedule, β rises in a straight "
            "line from 0 at the first step to β after $E_w$ **Warm-up epochs** (a fraction of an epoch works too), "
            "then stays. With β near 0 at first, the decoder learns to use $z$ before the KL term presses on it, "
            "which helps avoid posterior collapse (a lesson on the Lessons tab shows it at β = 2)."
        ),
    ),
    Formula(
        anchor="cyclical-beta", title="Cyclical β", part=KL_TERM,
        controls=("beta_schedule", "beta_cycles", "beta_cycle_ratio"),
        latex=(
            (r"P = \frac{E\, S}{M}, \qquad \tau_t = \frac{t \bmod \lceil P\rceil}{P}, \qquad"
             r" \beta_t = \beta\cdot\min\Big(1,\; \frac{\tau_t}{R}\Big)"),
        ),
        text=(
            "With the **cyclical** schedule (Fu et al., 2019) the run's $E$ epochs are cut into $M$ **Cycles**: a "
            "new cycle starts every $\\lceil P\\rceil$ steps, and $\\tau_t$ is how far step $t$ is into its cycle "
            "(from 0 to just under 1). β rises in a straight line from 0 over the cycle's first share $R$ "
            "(**Share of each cycle spent rising**), then holds β until the next cycle starts again from 0. Each "
            "restart lets the decoder learn again to use $z$, from the encoder it has by then: a lesson shows the "
            "KL climbing from cycle to cycle."
        ),
    ),
    Formula(
        anchor="capacity", title="The capacity objective", part=KL_TERM,
        controls=("capacity", "capacity_gamma", "capacity_max", "capacity_ramp_epochs"),
        latex=(
            (r"\mathcal L = \text{reconstruction} + \gamma\cdot\big|\,\mathrm{KL} - C_t\,\big|, \qquad"
             r" C_t = C_{\max}\cdot\min\Big(1,\; \frac{t}{E_C\, S}\Big)"
             r"\qquad(C_t = C_{\max}\ \text{when}\ E_C = 0)"),
        ),
        text=(
            "Instead of weighing the KL term, aim it at a target (Burgess et al., 2018): the KL (the batch's mean, "
            "in nats) is pulled towards $C_t$ from either side with weight γ. The target ramps in a straight line "
            "from 0 to $C_{\\max}$ (**C at the end of the ramp**) over $E_C$ **Ramp epochs**, so the code is "
            "allowed to carry more information as training goes on. β, its schedule and free bits are not used. "
            "A large γ holds the KL at its target but swamps the reconstruction's gradient (a lesson shows it "
            "with γ = 100)."
        ),
    ),
    Formula(
        anchor="free-bits", title="Free bits", part=KL_TERM, controls=("free_bits",),
        latex=(
            (r"\mathcal L = \text{reconstruction} + \beta_t\sum_{j=1}^{d}\max\big(\overline{\mathrm{KL}}_j,\;"
             r"\lambda\big), \qquad \overline{\mathrm{KL}}_j = \frac{1}{B}\sum_{b=1}^{B}\mathrm{KL}_{b,j}"),
        ),
        text=(
            "λ is the **Free bits** setting, in nats per latent dimension (Kingma et al., 2016). Each dimension's "
            "KL is averaged over the batch first, then clamped: a dimension whose mean KL is under λ feels no "
            "pull towards the prior at all (its gradient from the KL term is 0), so each dimension may carry up to "
            "λ nats for free. β and its schedule still weigh the sum; the loss chart draws this sum as the KL "
            "term, and the −ELBO beside it with the plain KL."
        ),
    ),
    Formula(
        anchor="autoencoder", title="The plain autoencoder", part=NO_KL, controls=("mode",),
        latex=(r"z = \mu(x), \qquad \mathcal L = -\log p_\theta\big(x\mid z\big)",),
        text=(
            "With **Kind** set to Autoencoder the encoder gives one code per input, with no noise and no KL term: "
            "only the reconstruction is trained (with the loss chosen above). It can reconstruct well, but nothing "
            "makes its codes fill the space around the origin, so decoding a random point often gives nonsense. "
            "The VAE's noise and KL term make its latent space *continuous* (nearby codes decode to similar "
            "inputs) and *complete* (codes drawn from the prior decode to plausible inputs). An autoencoder has "
            "no ELBO: its final score is its test reconstruction."
        ),
    ),
    Formula(
        anchor="iwae", title=f"The IWAE bound, k = {IWAE_K} (the final score)", part=SCORE, controls=(),
        latex=(
            (r"\log p_\theta(x) \;\ge\; \mathcal L_k = \mathbb E_{z_1,\dots,z_k \sim q_\phi(z\mid x)}\Big[\log"
             r" \frac1k\sum_{i=1}^{k}\frac{p_\theta(x\mid z_i)\,p(z_i)}{q_\phi(z_i\mid x)}\Big]"
             r" \;\ge\; \mathcal L_1 = \text{ELBO}"),
        ),
        text=(
            "The importance-weighted bound (Burda et al., 2016) averages $k$ weights before the log: "
            "$\\mathcal L_1$ is the ELBO, the bound does not fall as $k$ grows, and it tends to "
            "$\\log p_\\theta(x)$. When a run ends, its **final score** on the held-out test split is the test "
            f"−ELBO and the test −IWAE bound with k = {IWAE_K}, both in nats per sample (lower is better). "
            "$-\\log p_\\theta(x)$ is at most the −IWAE bound, and the bound's lead over the ELBO is at most the "
            "ELBO's gap: a large lead says the encoder's $q_\\phi(z\\mid x)$ is far from the true posterior. The "
            "Explore page computes the bound with the k you choose."
        ),
    ),
)


def explaining(field: str) -> list[Formula]:
    """The formulas that explain a setting, in the page's order."""
    return [formula for formula in FORMULAS if field in formula.controls]


def link(formula: Formula) -> str:
    """A markdown link to the formula on the Learn page (relative: it keeps a server's base path)."""
    return f"[{formula.title}]({LEARN_PATH}#{formula.anchor})"


def help_with_formulas(field: str, text: str | None = None) -> str | None:
    """A Train page control's help text, ending with links to the formulas that explain it (if any do)."""
    formulas = explaining(field)
    if not formulas:
        return text
    links = "On the Learn page: " + " · ".join(link(formula) for formula in formulas)
    return f"{text}\n\n{links}" if text else links
