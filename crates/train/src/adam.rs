//! Adam (Kingma & Ba 2015) with its moments exposed, so that a checkpoint holds the whole
//! optimiser state and a resumed run continues exactly where it stopped.

use tch::Tensor;

pub struct Adam {
    pub learning_rate: f64,
    beta1: f64,
    beta2: f64,
    epsilon: f64,
    /// Updates made so far.
    pub step: i64,
    /// (name, parameter, first moment, second moment), sorted by name.
    slots: Vec<(String, Tensor, Tensor, Tensor)>,
}

impl Adam {
    /// Adam over the trainable variables of `vs`, PyTorch's default betas and epsilon.
    pub fn new(vs: &tch::nn::VarStore, learning_rate: f64) -> Adam {
        let mut variables: Vec<(String, Tensor)> =
            vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        variables.sort_by(|a, b| a.0.cmp(&b.0));
        let slots = variables
            .into_iter()
            .map(|(name, p)| {
                let (m, v) = (p.zeros_like(), p.zeros_like());
                (name, p, m, v)
            })
            .collect();
        Adam {
            learning_rate,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            step: 0,
            slots,
        }
    }

    pub fn zero_grad(&mut self) {
        for (_, p, _, _) in &mut self.slots {
            p.zero_grad();
        }
    }

    /// One update from the accumulated gradients. Parameters that did not reach the loss
    /// have undefined gradients and are left alone.
    pub fn step(&mut self) {
        self.step += 1;
        let (b1, b2) = (self.beta1, self.beta2);
        let correction1 = 1.0 - b1.powi(self.step as i32);
        let correction2 = 1.0 - b2.powi(self.step as i32);
        let rate = self.learning_rate;
        let epsilon = self.epsilon;
        tch::no_grad(|| {
            for (_, p, m, v) in &mut self.slots {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                *m *= b1;
                *m += &g * (1.0 - b1);
                *v *= b2;
                *v += g.square() * (1.0 - b2);
                let update = (&*m / correction1) / ((&*v / correction2).sqrt() + epsilon) * rate;
                *p -= update;
            }
        });
    }

    /// The moments as named tensors, for checkpoints.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        self.slots
            .iter()
            .flat_map(|(name, _, m, v)| {
                [
                    (format!("adam.m.{name}"), m.shallow_clone()),
                    (format!("adam.v.{name}"), v.shallow_clone()),
                ]
            })
            .collect()
    }

    /// Restores moments saved by [`Adam::state`].
    pub fn restore(&mut self, saved: &std::collections::HashMap<String, Tensor>, step: i64) -> Result<(), String> {
        tch::no_grad(|| {
            for (name, _, m, v) in &mut self.slots {
                for (prefix, slot) in [("adam.m.", m), ("adam.v.", v)] {
                    let key = format!("{prefix}{name}");
                    let value = saved.get(&key).ok_or(format!("checkpoint lacks {key}"))?;
                    slot.copy_(value);
                }
            }
            Ok::<(), String>(())
        })?;
        self.step = step;
        Ok(())
    }
}
