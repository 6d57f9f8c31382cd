//! The requests still to send, read to price them before they are sent: the models they name
//! (the estimate) and their bodies (the cost line before a job's first request).

use super::Store;

impl Store {
    /// The models the valid rows' requests name (`""` for none). `fixed`: the job's `--model`,
    /// which every request carries, so the rows need not be read.
    pub fn request_models(&self, fixed: Option<&str>) -> anyhow::Result<Vec<String>> {
        if let Some(m) = fixed {
            return Ok(vec![m.to_string()]);
        }
        let mut q = self.conn.prepare(
            "SELECT DISTINCT coalesce(json_extract(request, '$.model'), '') FROM rows WHERE invalid = 0",
        )?;
        let models = q
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<_, _>>()?;
        Ok(models)
    }

    /// Calls `f` with the request body of every pending row this run may send (within
    /// `--limit`), in input order (the cost line before a job's first request prices them).
    pub fn each_pending_request(&self, mut f: impl FnMut(&str)) -> anyhow::Result<()> {
        let mut q = self.conn.prepare(
            "SELECT request FROM rows WHERE state = 'pending' AND invalid = 0 AND request IS NOT NULL
               AND seq <= ?1 ORDER BY seq",
        )?;
        let mut rows = q.query([self.through])?;
        while let Some(r) = rows.next()? {
            f(r.get_ref(0)?.as_str()?);
        }
        Ok(())
    }
}
