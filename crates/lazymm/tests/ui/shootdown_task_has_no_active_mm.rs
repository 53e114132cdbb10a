// Under `shootdown` a task has no `active_mm`: the field does not exist.
use lazymm::scheme::Shootdown;
use lazymm::Task;

fn main() {
    let task: Task<Shootdown> = Task::kthread(1);
    let _ = &task.scheme.active_mm;
}
