// The borrow cannot be moved to a thread playing another CPU.
use lazymm::arch::Generic;
use lazymm::scheme::Shootdown;
use lazymm::{Config, Kernel};

fn main() {
    let (_k, mut cpus) = Kernel::<Shootdown, Generic>::boot(Config::new(2));
    let cpu = &mut cpus[0];
    let irq = cpu.local_irq_disable();
    let lazy = cpu.lazy_mm(&irq);
    std::thread::scope(|s| {
        s.spawn(move || lazy.is_init());
    });
}
