//! Following a cursor chain lazily, one page at a time.

use std::future::Future;

use futures::{stream, Stream, TryStreamExt};

use crate::PluginError;

/// One page of a paged API: its items and the cursor of the next page, if there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T, C> {
    /// The items of this page, in order.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<C>,
}

/// The pages from `first` on: `fetch(cursor)` is called for a page only when the consumer
/// asks for it, and not again after a page without `next` or after an error.
///
/// Use it rather than [`paginate`] to checkpoint after each page.
pub fn paginate_pages<T, C, F, Fut>(
    first: C,
    mut fetch: F,
) -> impl Stream<Item = Result<Page<T, C>, PluginError>>
where
    C: Clone,
    F: FnMut(C) -> Fut,
    Fut: Future<Output = Result<Page<T, C>, PluginError>>,
{
    stream::try_unfold(Some(first), move |cursor| {
        let page = cursor.map(&mut fetch);
        async move {
            match page {
                None => Ok(None),
                Some(page) => {
                    let page = page.await?;
                    let next = page.next.clone();
                    Ok(Some((page, next)))
                }
            }
        }
    })
}

/// The items of every page from `first` on, lazily: a page is fetched only once the consumer
/// has taken every item of the one before, so at most one page is held at a time.
///
/// ```
/// # futures::executor::block_on(async {
/// use futures::TryStreamExt;
/// use tributary_plugin_sdk::{paginate, Page, PluginError};
///
/// let items: Vec<u32> = paginate(0u32, |page| async move {
///     Ok::<_, PluginError>(Page {
///         items: vec![page * 10, page * 10 + 1],
///         next: (page < 2).then_some(page + 1),
///     })
/// })
/// .try_collect()
/// .await
/// .unwrap();
/// assert_eq!(items, [0, 1, 10, 11, 20, 21]);
/// # });
/// ```
pub fn paginate<T, C, F, Fut>(first: C, fetch: F) -> impl Stream<Item = Result<T, PluginError>>
where
    C: Clone,
    F: FnMut(C) -> Fut,
    Fut: Future<Output = Result<Page<T, C>, PluginError>>,
{
    paginate_pages(first, fetch)
        .map_ok(|page| stream::iter(page.items.into_iter().map(Ok)))
        .try_flatten()
}
