// The borrow of the lazy mm is not `Send`: it is valid only on the CPU whose
// interrupts are disabled.
fn assert_send<T: Send>() {}

fn main() {
    assert_send::<lazymm::LazyMm<'static>>();
}
