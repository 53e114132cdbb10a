// Under `lazy-percpu` a task has no `active_mm`: the field does not exist. The lazy mm
// is the CPU's, reachable only as a borrow of an interrupts-disabled guard.
use lazymm::scheme::LazyPercpu;
use lazymm::Task;

fn main() {
    let task: Task<LazyPercpu> = Task::kthread(1);
    let _ = &task.scheme.active_mm;
}
