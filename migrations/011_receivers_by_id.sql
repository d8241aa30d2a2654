-- A narrow index of receiver ids, for paging the receivers list: skipping OFFSET rows walks this
-- index (a few hundred pages at 100,000 receivers) instead of the table's leaf pages, which hold
-- every config (some 7,000 pages). count(*) uses it too, as the smallest b-tree.
CREATE INDEX receivers_by_id ON receivers (id);
