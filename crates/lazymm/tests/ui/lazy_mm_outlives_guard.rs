// The borrow of the lazy mm cannot outlive the interrupts-disabled guard it was
// taken under: once interrupts may come back on, a shootdown may free the mm.
use lazymm::arch::Generic;
use lazymm::scheme::Shootdown;
use lazymm::{Config, Kernel, LazyMm};

fn main() {
    let (_k, mut cpus) = Kernel::<Shootdown, Generic>::boot(Config::new(1));
    let cpu = &mut cpus[0];
    let lazy: LazyMm<'_> = {
        let irq = cpu.local_irq_disable();
        cpu.lazy_mm(&irq)
    };
    assert!(lazy.is_init());
}
