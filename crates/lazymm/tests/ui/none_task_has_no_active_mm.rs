// Under `none` a task has no `active_mm`: the field does not exist.
use lazymm::scheme::NoRefs;
use lazymm::Task;

fn main() {
    let task: Task<NoRefs> = Task::kthread(1);
    let _ = &task.scheme.active_mm;
}
