// Under `hazptr-luto-cpumask` a task has no `active_mm`: the field does not exist.
use lazymm::scheme::HazptrLutoCpumask;
use lazymm::Task;

fn main() {
    let task: Task<HazptrLutoCpumask> = Task::kthread(1);
    let _ = &task.scheme.active_mm;
}
