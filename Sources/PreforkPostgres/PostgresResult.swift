import CLibpq

/// The rows of a statement, decoded at once (the libpq result is freed before this is handed out).
public struct PostgresResult: Sendable {
    public let columns: [String]
    public let rows: [PostgresRow]
    /// `PQcmdTuples`: rows inserted, updated or deleted.
    public let affectedRows: Int

    init(_ result: OpaquePointer) throws(PostgresError) {
        let columnCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        var columns: [String] = []
        var types: [UInt32] = []
        for column in 0..<columnCount {
            columns.append(String(cString: PQfname(result, Int32(column))))
            types.append(PQftype(result, Int32(column)))
        }
        let index = Dictionary(columns.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        var rows: [PostgresRow] = []
        rows.reserveCapacity(rowCount)
        for row in 0..<rowCount {
            var values: [PostgresValue] = []
            values.reserveCapacity(columnCount)
            for column in 0..<columnCount {
                if PQgetisnull(result, Int32(row), Int32(column)) != 0 {
                    values.append(.null)
                } else {
                    let text = String(cString: PQgetvalue(result, Int32(row), Int32(column)))
                    values.append(try PostgresValue(text: text, type: types[column]))
                }
            }
            rows.append(PostgresRow(index: index, values: values))
        }
        self.columns = columns
        self.rows = rows
        self.affectedRows = Int(String(cString: PQcmdTuples(result))) ?? 0
    }
}

public struct PostgresRow: Sendable {
    let index: [String: Int]
    public let values: [PostgresValue]

    /// The value of a column by name; `.null` for a column the row does not have.
    public subscript(_ column: String) -> PostgresValue {
        index[column].map { values[$0] } ?? .null
    }

    public subscript(_ position: Int) -> PostgresValue { values[position] }
}
