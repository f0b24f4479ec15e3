package sql

import (
	"strings"

	"gorm.io/gorm"

	"github.com/tollgate/tollgate/storage"
)

// MaxPageLimit is the most records one call of a List method returns. A
// storage.Page whose Limit is zero, negative or above it asks for
// MaxPageLimit records.
const MaxPageLimit = 1000

func pageLimit(p storage.Page) int {
	if p.Limit <= 0 || p.Limit > MaxPageLimit {
		return MaxPageLimit
	}
	return p.Limit
}

// subtreeIDsQuery selects account ? and its descendants, walking down from
// it. UNION, not UNION ALL, ends the walk should the tree ever hold a
// cycle. Both dialects accept a WITH clause in a subquery.
const subtreeIDsQuery = `WITH RECURSIVE subtree (id) AS (
	SELECT id FROM accounts WHERE id = ?
	UNION
	SELECT a.id FROM accounts a JOIN subtree t ON a.parent_id = t.id
) SELECT id FROM subtree`

// whereAccount narrows db to the rows whose column is accountID or, with
// subtree, one of its descendants. accountID 0 does not narrow: it stands
// for the whole installation, the parent of every root account.
func whereAccount(db *gorm.DB, column string, accountID int64, subtree bool) *gorm.DB {
	switch {
	case accountID == 0:
		return db
	case subtree:
		return db.Where(column+" IN ("+subtreeIDsQuery+")", accountID)
	default:
		return db.Where(column+" = ?", accountID)
	}
}

// pageAfter narrows db to one page of a list in ascending id order.
func pageAfter(db *gorm.DB, p storage.Page) *gorm.DB {
	return db.Where("id > ?", p.After).Order("id").Limit(pageLimit(p))
}

// whereNameContains narrows db to the rows whose column contains name,
// ignoring case; "" does not narrow. LIKE's wildcards in name match
// themselves.
func whereNameContains(db *gorm.DB, column, name string) *gorm.DB {
	if name == "" {
		return db
	}
	escaped := strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(strings.ToLower(name))
	return db.Where("LOWER("+column+`) LIKE ? ESCAPE '\'`, "%"+escaped+"%")
}
