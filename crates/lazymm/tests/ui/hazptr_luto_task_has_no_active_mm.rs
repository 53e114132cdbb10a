// Under `hazptr-luto` a task has no `active_mm`: the field does not exist.
use lazymm::scheme::HazptrLuto;
use lazymm::Task;

fn main() {
    let task: Task<HazptrLuto> = Task::kthread(1);
    let _ = &task.scheme.active_mm;
}
