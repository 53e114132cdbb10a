// The interrupts-disabled guard is not `Send`: it proves something about one CPU.
fn assert_send<T: Send>() {}

fn main() {
    assert_send::<lazymm::IrqGuard>();
}
