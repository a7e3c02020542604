//! A Store table with a row type. Rows are JSON in the Store; here they are `T`, and a row that
//! does not read as `T` is an error naming the table and the row (`StoreError::CorruptRow`),
//! never a row silently skipped. A row that cannot be written is an error too, never `""`.
//!
//! Compare-and-set works on the row as it was read: `get` returns a `Versioned<T>` that keeps
//! the stored text, and `swap` writes only if the row is still exactly that.

use std::borrow::Cow;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::store::{Store, StoreError, StoreResult};

/// One table of the Store, by name, with rows of type `T`. Holds no connection: declare it as a
/// `const` (or, for a table per group or per camera, make one with `named`) and pass the Store
/// to each call.
pub struct Table<T> {
    name: Cow<'static, str>,
    row: PhantomData<fn() -> T>,
}

/// A row as read, with the stored text that a compare-and-set compares against.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub row: T,
    stored: String,
}

impl<T: Serialize + DeserializeOwned> Table<T> {
    pub const fn new(name: &'static str) -> Self {
        Self { name: Cow::Borrowed(name), row: PhantomData }
    }

    /// A table whose name is made at run time (e.g. `lpr_wl:<group>`).
    pub fn named(name: String) -> Self {
        Self { name: Cow::Owned(name), row: PhantomData }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The row as stored (for a pipeline of several writes).
    pub fn encode(&self, id: &str, row: &T) -> StoreResult<String> {
        serde_json::to_string(row).map_err(|e| StoreError::Encode { table: self.name.to_string(), id: id.to_owned(), error: e.to_string() })
    }

    /// A stored row read back.
    pub fn decode(&self, id: &str, stored: &str) -> StoreResult<T> {
        serde_json::from_str(stored).map_err(|e| StoreError::CorruptRow {
            table: self.name.to_string(),
            id: id.to_owned(),
            error: e.to_string(),
        })
    }

    pub async fn get(&self, store: &dyn Store, id: &str) -> StoreResult<Option<Versioned<T>>> {
        match store.table_get(&self.name, id).await? {
            Some(stored) => Ok(Some(Versioned { row: self.decode(id, &stored)?, stored })),
            None => Ok(None),
        }
    }

    /// Writes the row only if `id` is absent; says whether it did.
    pub async fn insert(&self, store: &dyn Store, id: &str, row: &T) -> StoreResult<bool> {
        store.table_insert(&self.name, id, &self.encode(id, row)?).await
    }

    /// Writes the row whatever was there.
    pub async fn put(&self, store: &dyn Store, id: &str, row: &T) -> StoreResult<()> {
        store.table_put(&self.name, id, &self.encode(id, row)?).await
    }

    /// Compare-and-set: replaces the row only if it is still exactly as `read`.
    pub async fn swap(&self, store: &dyn Store, id: &str, read: &Versioned<T>, row: &T) -> StoreResult<bool> {
        store.table_swap(&self.name, id, &read.stored, &self.encode(id, row)?).await
    }

    /// Removes the row and returns it: of several callers racing, exactly one gets it. A corrupt
    /// row is removed all the same (it is reported, and would never read better later).
    pub async fn take(&self, store: &dyn Store, id: &str) -> StoreResult<Option<T>> {
        match store.table_take(&self.name, id).await? {
            Some(stored) => self.decode(id, &stored).map(Some),
            None => Ok(None),
        }
    }

    /// Every row, sorted by id; each one that does not read is an `Err` in its place.
    pub async fn list(&self, store: &dyn Store) -> StoreResult<Vec<(String, StoreResult<T>)>> {
        Ok(self.list_versioned(store).await?.into_iter().map(|(id, v)| (id, v.map(|v| v.row))).collect())
    }

    /// [`Table::list`] with each row's version, for swaps: one read of the table.
    pub async fn list_versioned(&self, store: &dyn Store) -> StoreResult<Vec<(String, StoreResult<Versioned<T>>)>> {
        let rows = store.table_list(&self.name).await?;
        Ok(rows
            .into_iter()
            .map(|(id, stored)| {
                let row = self.decode(&id, &stored).map(|row| Versioned { row, stored });
                (id, row)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::store::MemoryStore;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Row {
        n: u32,
    }

    const ROWS: Table<Row> = Table::new("rows");

    #[tokio::test]
    async fn a_corrupt_row_is_reported_by_name_not_dropped() {
        let store = MemoryStore::new();
        ROWS.put(&store, "a", &Row { n: 1 }).await.unwrap();
        store.table_put("rows", "b", "{not json").await.unwrap();
        match ROWS.get(&store, "b").await {
            Err(StoreError::CorruptRow { table, id, .. }) => assert_eq!((table.as_str(), id.as_str()), ("rows", "b")),
            other => panic!("{other:?}"),
        }
        let listed = ROWS.list(&store).await.unwrap();
        assert_eq!(listed.len(), 2, "the corrupt row is listed, as an error");
        assert_eq!(listed[0].1.as_ref().unwrap(), &Row { n: 1 });
        assert!(matches!(listed[1].1, Err(StoreError::CorruptRow { .. })));
        assert!(ROWS.take(&store, "b").await.is_err(), "taken and reported");
        assert!(store.table_get("rows", "b").await.unwrap().is_none(), "but gone");
    }

    #[tokio::test]
    async fn insert_swap_and_take_keep_their_contracts() {
        let store = MemoryStore::new();
        assert!(ROWS.insert(&store, "a", &Row { n: 1 }).await.unwrap());
        assert!(!ROWS.insert(&store, "a", &Row { n: 2 }).await.unwrap(), "insert only if absent");
        let read = ROWS.get(&store, "a").await.unwrap().unwrap();
        assert_eq!(read.row, Row { n: 1 });
        // Someone else changes it between our read and our write: our swap must lose.
        ROWS.put(&store, "a", &Row { n: 5 }).await.unwrap();
        assert!(!ROWS.swap(&store, "a", &read, &Row { n: 2 }).await.unwrap());
        let fresh = ROWS.get(&store, "a").await.unwrap().unwrap();
        assert!(ROWS.swap(&store, "a", &fresh, &Row { n: 6 }).await.unwrap());
        // A row read by listing swaps like one read alone, and loses the same way.
        let listed = ROWS.list_versioned(&store).await.unwrap().remove(0).1.unwrap();
        assert_eq!(listed.row, Row { n: 6 });
        ROWS.put(&store, "a", &Row { n: 7 }).await.unwrap();
        assert!(!ROWS.swap(&store, "a", &listed, &Row { n: 8 }).await.unwrap());
        let listed = ROWS.list_versioned(&store).await.unwrap().remove(0).1.unwrap();
        assert!(ROWS.swap(&store, "a", &listed, &Row { n: 6 }).await.unwrap());
        assert_eq!(ROWS.take(&store, "a").await.unwrap(), Some(Row { n: 6 }));
        assert_eq!(ROWS.take(&store, "a").await.unwrap(), None, "taken once");
    }

    #[tokio::test]
    async fn a_row_that_cannot_be_encoded_writes_nothing() {
        // JSON maps need string keys: this row has none, so serde_json refuses it.
        const BAD: Table<std::collections::HashMap<(u8, u8), u8>> = Table::new("bad");
        let store = MemoryStore::new();
        let row = std::collections::HashMap::from([((1, 2), 3)]);
        assert!(matches!(BAD.put(&store, "x", &row).await, Err(StoreError::Encode { ref table, .. }) if table == "bad"));
        assert!(store.table_get("bad", "x").await.unwrap().is_none());
    }
}
