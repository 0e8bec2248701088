//! The quick start's Rust hello-world (docs/QUICKSTART.md): join, see who is here, edit, react.
use montage_client::{Client, Component, Event, Op, Value, path};
#[tokio::main]
async fn main() -> montage_client::Result<()> {
    let url = std::env::var("MONTAGE_URL").unwrap_or("ws://127.0.0.1:7070/v1/ws".into());
    let client = Client::connect(url, std::env::var("MONTAGE_TOKEN").unwrap_or_default()).await?;
    let film = client.join("hello").await?;
    let here: Vec<String> = film.participants().into_iter().map(|p| p.user).collect();
    println!("here: {here:?}");
    let title = Value::str("Hello from Rust");
    film.edit(Op::new(vec![Component::set(path!["title"], title)]))?;
    film.sync(std::time::Duration::from_secs(10)).await?; // acknowledged: durable on the server
    let mut events = film.events();
    while let Some(ev) = events.next().await {
        if let Event::Edit { user, .. } = ev {
            println!("{user} changed it: {}", film.state().to_json()["title"]);
        }
    }
    Ok(())
}
