//! The Data API emulator's MongoDB wire-protocol listener, driven by the
//! real `mongodb` driver (handshake, OP_MSG, cursors, write results, errors)
//! and, for framing errors, by a raw socket. The store is the HTTP
//! emulator's: what one front end writes, the other reads.

use emulators::{demo, start, Emulators, Options};
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::{FindOneAndUpdateOptions, FindOptions, InsertManyOptions, ReturnDocument};
use mongodb::{Client, Collection};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn start_emulator() -> Emulators {
    start(Options { seed: false, authentik_port: None, stalwart_port: None, ocis_port: None, ..Options::default() })
        .await
        .expect("emulators start")
}

async fn client(emu: &Emulators) -> Client {
    Client::with_uri_str(emu.data_api().wire_url()).await.expect("a client")
}

/// Documents whose `_id`s are out of creation order: 5, 3, 7, 1, 6, 2, 4.
fn people() -> Vec<Document> {
    [5, 3, 7, 1, 6, 2, 4]
        .into_iter()
        .map(|i| doc! { "_id": i, "name": format!("p{i}"), "team": if i % 2 == 0 { "even" } else { "odd" }, "n": i * 10 })
        .collect()
}

fn ids(docs: &[Document]) -> Vec<i32> {
    docs.iter().map(|d| d.get_i32("_id").expect("an int _id")).collect()
}

#[tokio::test]
async fn handshake_ping_build_info_and_unknown_commands() {
    let emu = start_emulator().await;
    let client = client(&emu).await;
    let admin = client.database("admin");
    let ping = admin.run_command(doc! { "ping": 1 }).await.expect("ping");
    assert_eq!(ping.get_f64("ok"), Ok(1.0));
    let info = admin.run_command(doc! { "buildInfo": 1 }).await.expect("buildInfo");
    assert_eq!(info.get_str("version"), Ok("7.0.0"));
    let hello = admin.run_command(doc! { "hello": 1 }).await.expect("hello");
    assert_eq!(hello.get_bool("isWritablePrimary"), Ok(true));
    assert!(hello.get_i32("maxWireVersion").expect("maxWireVersion") >= 17);
    assert_eq!(hello.get_i32("maxWriteBatchSize"), Ok(100_000));
    let err = admin.run_command(doc! { "frobnicate": 1 }).await.expect_err("unknown command");
    match *err.kind {
        mongodb::error::ErrorKind::Command(ref c) => assert_eq!((c.code, c.code_name.as_str()), (59, "CommandNotFound")),
        ref other => panic!("expected a command error, got {other:?}"),
    }
    client.shutdown().await;
}

#[tokio::test]
async fn find_sorts_skips_limits_projects_and_pages_with_get_more() {
    let emu = start_emulator().await;
    let client = client(&emu).await;
    let coll: Collection<Document> = client.database("wire_a").collection("people");
    coll.insert_many(people()).await.expect("insert");

    // Natural order is insertion order, not _id order.
    let all: Vec<Document> = coll.find(doc! {}).await.unwrap().try_collect().await.unwrap();
    assert_eq!(ids(&all), [5, 3, 7, 1, 6, 2, 4]);

    // Batches of 2 over 7 documents: the driver has to getMore three times.
    let opts = FindOptions::builder().sort(doc! { "_id": -1 }).batch_size(2).build();
    let sorted: Vec<Document> = coll.find(doc! {}).with_options(opts).await.unwrap().try_collect().await.unwrap();
    assert_eq!(ids(&sorted), [7, 6, 5, 4, 3, 2, 1]);

    let opts = FindOptions::builder()
        .sort(doc! { "team": 1, "n": -1 })
        .skip(1)
        .limit(3)
        .projection(doc! { "name": 1, "_id": 0 })
        .batch_size(1)
        .build();
    let page: Vec<Document> = coll.find(doc! { "n": { "$gte": 20 } }).with_options(opts).await.unwrap().try_collect().await.unwrap();
    // even (n desc): 6, 4, 2; odd: 7, 5, 3 → skip 1 → 4, 2, 7.
    assert_eq!(page, vec![doc! { "name": "p4" }, doc! { "name": "p2" }, doc! { "name": "p7" }]);

    // A negative limit is one batch.
    let opts = FindOptions::builder().limit(-2).sort(doc! { "_id": 1 }).build();
    let one_batch: Vec<Document> = coll.find(doc! {}).with_options(opts).await.unwrap().try_collect().await.unwrap();
    assert_eq!(ids(&one_batch), [1, 2]);

    // Dropping an unfinished cursor sends killCursors; the server accepts it.
    let mut cursor = coll.find(doc! {}).batch_size(1).await.unwrap();
    assert!(cursor.advance().await.unwrap());
    drop(cursor);
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 7);
    client.shutdown().await;
}

#[tokio::test]
async fn inserts_report_duplicates_as_mongodb_does_ordered_and_unordered() {
    let emu = start_emulator().await;
    let client = client(&emu).await;
    let coll: Collection<Document> = client.database("wire_b").collection("items");
    coll.insert_one(doc! { "_id": 2, "v": "first" }).await.unwrap();

    let err = coll.insert_many(vec![doc! { "_id": 9 }, doc! { "_id": 2 }, doc! { "_id": 10 }]).await.expect_err("a duplicate _id");
    let mongodb::error::ErrorKind::InsertMany(ref e) = *err.kind else { panic!("expected InsertMany, got {err:?}") };
    let we = e.write_errors.as_ref().expect("write errors");
    assert_eq!((we.len(), we[0].index, we[0].code), (1, 1, 11000));
    assert_eq!(we[0].message, "E11000 duplicate key error collection: wire_b.items index: _id_ dup key: { _id: 2 }");
    // Ordered: the document before the duplicate stays, the one after is not inserted.
    assert_eq!(emu.data_api().api.count("wire_b", "items", json!({})), 2);

    let unordered = InsertManyOptions::builder().ordered(false).build();
    let err = coll.insert_many(vec![doc! { "_id": 2 }, doc! { "_id": 11 }]).with_options(unordered).await.expect_err("a duplicate _id");
    let mongodb::error::ErrorKind::InsertMany(ref e) = *err.kind else { panic!("expected InsertMany, got {err:?}") };
    assert_eq!(e.write_errors.as_ref().unwrap()[0].index, 0);
    assert_eq!(emu.data_api().api.count("wire_b", "items", json!({"_id": 11})), 1);

    // A generated ObjectId comes back as the inserted id.
    let r = coll.insert_one(doc! { "v": "generated" }).await.unwrap();
    assert!(matches!(r.inserted_id, Bson::ObjectId(_)));
    client.shutdown().await;
}

#[tokio::test]
async fn updates_replacements_upserts_and_deletes() {
    let emu = start_emulator().await;
    let client = client(&emu).await;
    let coll: Collection<Document> = client.database("wire_c").collection("people");
    coll.insert_many(people()).await.unwrap();

    let r = coll.update_one(doc! { "team": "odd" }, doc! { "$inc": { "n": 1 } }).await.unwrap();
    assert_eq!((r.matched_count, r.modified_count, r.upserted_id), (1, 1, None));
    // The first odd one in natural order is _id 5.
    assert_eq!(coll.find_one(doc! { "_id": 5 }).await.unwrap().unwrap().get_i32("n"), Ok(51));

    let r = coll.update_many(doc! { "team": "even" }, doc! { "$set": { "team": "even" } }).await.unwrap();
    assert_eq!((r.matched_count, r.modified_count), (3, 0), "an update that changes nothing is not a modification");

    let r = coll.update_one(doc! { "_id": 42 }, doc! { "$set": { "name": "new" } }).upsert(true).await.unwrap();
    assert_eq!((r.matched_count, r.modified_count, r.upserted_id), (0, 0, Some(Bson::Int32(42))));

    let r = coll.replace_one(doc! { "_id": 3 }, doc! { "name": "replaced" }).await.unwrap();
    assert_eq!((r.matched_count, r.modified_count), (1, 1));
    assert_eq!(coll.find_one(doc! { "_id": 3 }).await.unwrap().unwrap(), doc! { "_id": 3, "name": "replaced" });

    let err = coll.update_one(doc! { "_id": 1 }, doc! { "$inc": { "name": 1 } }).await.expect_err("$inc on a string");
    assert!(err.to_string().contains("name"), "{err}");

    assert_eq!(coll.delete_one(doc! { "team": "even" }).await.unwrap().deleted_count, 1);
    assert_eq!(coll.delete_many(doc! { "team": "odd" }).await.unwrap().deleted_count, 3);
    let left: Vec<Document> = coll.find(doc! {}).sort(doc! { "_id": 1 }).await.unwrap().try_collect().await.unwrap();
    assert_eq!(ids(&left), [2, 3, 4, 42]);
    client.shutdown().await;
}

#[tokio::test]
async fn find_and_modify_aggregate_and_counts() {
    let emu = start_emulator().await;
    let client = client(&emu).await;
    let coll: Collection<Document> = client.database("wire_d").collection("people");
    coll.insert_many(people()).await.unwrap();

    let opts = FindOneAndUpdateOptions::builder().sort(doc! { "n": -1 }).return_document(ReturnDocument::After).build();
    let after = coll
        .find_one_and_update(doc! { "team": "even" }, doc! { "$set": { "top": true } })
        .with_options(opts)
        .await
        .unwrap()
        .expect("a match");
    assert_eq!((after.get_i32("_id"), after.get_bool("top")), (Ok(6), Ok(true)));

    let before = coll.find_one_and_update(doc! { "_id": 1 }, doc! { "$inc": { "n": 5 } }).await.unwrap().unwrap();
    assert_eq!(before.get_i32("n"), Ok(10), "the document before the change by default");
    let upserted = coll
        .find_one_and_update(doc! { "_id": 99 }, doc! { "$set": { "team": "none" } })
        .upsert(true)
        .return_document(ReturnDocument::After)
        .await
        .unwrap();
    assert_eq!(upserted, Some(doc! { "_id": 99, "team": "none" }));
    let removed = coll.find_one_and_delete(doc! { "_id": 99 }).await.unwrap();
    assert_eq!(removed.and_then(|d| d.get_str("team").ok().map(str::to_owned)), Some("none".into()));

    let groups: Vec<Document> = coll
        .aggregate(vec![doc! { "$group": { "_id": "$team", "total": { "$sum": "$n" } } }, doc! { "$sort": { "_id": 1 } }])
        .batch_size(1)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(groups, vec![doc! { "_id": "even", "total": 120 }, doc! { "_id": "odd", "total": 165 }]);

    // count_documents is an aggregate; estimated_document_count is `count`.
    assert_eq!(coll.count_documents(doc! { "team": "odd" }).await.unwrap(), 4);
    assert_eq!(coll.count_documents(doc! {}).skip(2).limit(3).await.unwrap(), 3);
    assert_eq!(coll.estimated_document_count().await.unwrap(), 7);
    client.shutdown().await;
}

#[tokio::test]
async fn http_and_wire_share_one_store_across_databases() {
    let emu = start_emulator().await;
    let client = client(&emu).await;
    let d = emu.data_api();

    client.database("tenant_a").collection::<Document>("users").insert_one(doc! { "_id": "u1", "who": "wire" }).await.unwrap();
    let http = reqwest::Client::new();
    let body = json!({"dataSource": "mongodb-atlas", "database": "tenant_a", "collection": "users", "filter": {}});
    let found: Value =
        http.post(d.action_url("find")).header("api-key", demo::DATA_API_KEY).json(&body).send().await.unwrap().json().await.unwrap();
    assert_eq!(found["documents"], json!([{"_id": "u1", "who": "wire"}]));

    let body =
        json!({"dataSource": "mongodb-atlas", "database": "tenant_b", "collection": "users", "document": {"_id": "u1", "who": "http"}});
    let status = http.post(d.action_url("insertOne")).header("api-key", demo::DATA_API_KEY).json(&body).send().await.unwrap().status();
    assert!(status.is_success(), "{status}");
    let b: Collection<Document> = client.database("tenant_b").collection("users");
    assert_eq!(b.find_one(doc! {}).await.unwrap(), Some(doc! { "_id": "u1", "who": "http" }));
    // Same _id, different databases: neither sees the other's.
    let a: Collection<Document> = client.database("tenant_a").collection("users");
    assert_eq!(a.count_documents(doc! { "who": "http" }).await.unwrap(), 0);
    client.shutdown().await;
}

async fn send_raw(emu: &Emulators, bytes: &[u8]) -> Vec<u8> {
    let addr = emu.data_api().wire_addr.expect("wire listener");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut out)).await.expect("the server answers or closes").unwrap();
    out
}

fn op_msg(flags: u32, body: &Document) -> Vec<u8> {
    let doc = mongodb::bson::to_vec(body).unwrap();
    let mut m = Vec::new();
    m.extend_from_slice(&((16 + 4 + 1 + doc.len()) as i32).to_le_bytes());
    m.extend_from_slice(&7i32.to_le_bytes());
    m.extend_from_slice(&0i32.to_le_bytes());
    m.extend_from_slice(&2013i32.to_le_bytes());
    m.extend_from_slice(&flags.to_le_bytes());
    m.push(0);
    m.extend_from_slice(&doc);
    m
}

#[tokio::test]
async fn malformed_messages_close_the_connection() {
    let emu = start_emulator().await;
    let ping = doc! { "ping": 1, "$db": "admin" };

    // A well-formed ping is answered (responseTo = our requestID) and the connection stays open.
    let addr = emu.data_api().wire_addr.unwrap();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(&op_msg(0, &ping)).await.unwrap();
    let mut header = [0u8; 16];
    s.read_exact(&mut header).await.unwrap();
    assert_eq!(i32::from_le_bytes(header[8..12].try_into().unwrap()), 7);
    assert_eq!(i32::from_le_bytes(header[12..16].try_into().unwrap()), 2013);

    // Unknown required flag bit, truncated BSON, unknown opcode, absurd length: closed, no answer.
    assert!(send_raw(&emu, &op_msg(1 << 5, &ping)).await.is_empty());
    let mut truncated = op_msg(0, &ping);
    truncated[21] = 0xFF; // the document's length byte now exceeds the message
    assert!(send_raw(&emu, &truncated).await.is_empty());
    let mut unknown_op = op_msg(0, &ping);
    unknown_op[12..16].copy_from_slice(&2010i32.to_le_bytes());
    assert!(send_raw(&emu, &unknown_op).await.is_empty());
    assert!(send_raw(&emu, &i32::MAX.to_le_bytes().repeat(4)).await.is_empty());

    // moreToCome: the command runs, nothing is answered.
    let insert = doc! { "insert": "quiet", "documents": [{ "_id": 1 }], "$db": "wire_e" };
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(&op_msg(1 << 1, &insert)).await.unwrap();
    s.write_all(&op_msg(0, &ping)).await.unwrap();
    s.read_exact(&mut header).await.unwrap();
    assert_eq!(emu.data_api().api.count("wire_e", "quiet", json!({})), 1);
}
