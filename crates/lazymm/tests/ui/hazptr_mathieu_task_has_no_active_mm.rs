// Under `hazptr-mathieu` a task has no `active_mm`: the field does not exist.
use lazymm::scheme::HazptrMathieu;
use lazymm::Task;

fn main() {
    let task: Task<HazptrMathieu> = Task::kthread(1);
    let _ = &task.scheme.active_mm;
}
