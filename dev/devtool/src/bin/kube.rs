//! Writes deploy/kubernetes/ from spin.toml (see devtool::kube). Run it after
//! adding or changing a component or variable; tests/it/kubernetes.rs
//! fails until the committed files match.

use devtool::kube::{render_workspace, DIR};
use devtool::workspace;

fn main() -> anyhow::Result<()> {
    let root = workspace();
    let dir = root.join(DIR);
    std::fs::create_dir_all(&dir)?;
    for (name, text) in render_workspace(&root)? {
        std::fs::write(dir.join(&name), text)?;
        println!("wrote {DIR}/{name}");
    }
    Ok(())
}
