// Under `shootdown-debug` a task has no `active_mm`: the field does not exist.
use lazymm::scheme::ShootdownDebug;
use lazymm::Task;

fn main() {
    let task: Task<ShootdownDebug> = Task::kthread(1);
    let _ = &task.scheme.active_mm;
}
