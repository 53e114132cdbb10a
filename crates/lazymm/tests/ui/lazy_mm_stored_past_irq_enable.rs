// The borrow cannot be stored somewhere that lives on after interrupts are enabled
// again: giving the guard back ends it.
use lazymm::arch::Generic;
use lazymm::scheme::Shootdown;
use lazymm::{Config, Kernel, LazyMm};

struct Saved<'a> {
    lazy: Option<LazyMm<'a>>,
}

fn main() {
    let (_k, mut cpus) = Kernel::<Shootdown, Generic>::boot(Config::new(1));
    let cpu = &mut cpus[0];
    let mut saved = Saved { lazy: None };
    let irq = cpu.local_irq_disable();
    saved.lazy = Some(cpu.lazy_mm(&irq));
    cpu.local_irq_enable(irq);
    assert!(saved.lazy.is_some());
}
